-- SPDX-License-Identifier: GPL-2.0-or-later
--
-- nexsrv's database schema, version 2: an enrolment in constant time, however many devices
-- its VPC has (the address allocation, and the check of the allocations' device).
--
-- Version 1 found a device's address by searching the VPC's allocations for the lowest
-- gap, which costs time in proportion to the devices of the VPC on every enrolment.  Now
-- each VPC keeps, per address family, a cursor (the next address never handed out) and the
-- addresses released by deleted devices; an allocation takes the lowest released address,
-- else the cursor's, skipping prefixes that devices advertise and addresses taken by
-- request.  ipam_allocations' primary key stays the guard against handing out an address
-- twice; the cursor row's lock makes the enrolments of a VPC take their addresses in turn
-- (they already take their revisions in turn), so without failures the addresses stay the
-- lowest ones, as before.  Addresses freed before this version are found again by the old
-- search, which nexsrv falls back to once a cursor reaches the end of its pool.
--
-- The migration runner applies this file inside its own transaction: no BEGIN or COMMIT here.

-- The next address to try in each pool of a VPC (family 4 or 6).
CREATE TABLE ipam_cursors (
	vpc_id uuid NOT NULL REFERENCES vpcs (id) ON DELETE CASCADE,
	family smallint NOT NULL CHECK (family IN (4, 6)),
	next inet NOT NULL CHECK (family(next) = family),
	PRIMARY KEY (vpc_id, family)
);

-- Addresses of a VPC given back (their device was deleted) and not handed out again yet.
CREATE TABLE ipam_released (
	vpc_id uuid NOT NULL REFERENCES vpcs (id) ON DELETE CASCADE,
	address inet NOT NULL,
	PRIMARY KEY (vpc_id, address)
);

-- The cursors of the VPCs that have allocations: past their highest address.
INSERT INTO ipam_cursors (vpc_id, family, next)
	SELECT vpc_id, family(address),
		CASE WHEN max(address) IN ('255.255.255.255'::inet,
			'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'::inet)
		THEN max(address) ELSE max(address) + 1 END
	FROM ipam_allocations GROUP BY vpc_id, family(address);

-- The devices that advertise prefixes, which allocations must stay out of: usually few, so
-- reading them must not read every device of the VPC.
CREATE INDEX devices_vpc_advertising_idx ON devices (vpc_id) WHERE advertise_cidrs <> '{}';

-- An allocation's device: the foreign key names the device alone, and a trigger checks that
-- it is of the allocation's VPC.  The check of the composite key (device_id, vpc_id) ran on
-- every enrolment as "id = $1 AND vpc_id = $2", and the plan the session cached for it while
-- the table was small could read every device of the VPC through devices_vpc_revision_idx:
-- an enrolment then cost time in proportion to the VPC's devices.  Looking a device up by
-- its id alone has one plan.  (A device never changes VPC, so there is nothing to cascade
-- on update.)  Both are checked at commit, so that an enrolment can allocate its addresses
-- to the device it inserts next, and have no separate step handing them over.
ALTER TABLE ipam_allocations DROP CONSTRAINT ipam_allocations_device_id_vpc_id_fkey;
ALTER TABLE ipam_allocations ADD CONSTRAINT ipam_allocations_device_id_fkey
	FOREIGN KEY (device_id) REFERENCES devices (id) ON DELETE CASCADE
	DEFERRABLE INITIALLY DEFERRED;

CREATE FUNCTION nexodus_ipam_device_vpc() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	vpc uuid;
BEGIN
	SELECT d.vpc_id INTO vpc FROM devices d WHERE d.id = NEW.device_id;
	IF FOUND AND vpc IS DISTINCT FROM NEW.vpc_id THEN
		RAISE foreign_key_violation USING
			MESSAGE = format('device %s is not a device of VPC %s', NEW.device_id,
					 NEW.vpc_id),
			CONSTRAINT = 'ipam_allocations_device_id_fkey';
	END IF;
	RETURN NULL;
END
$$;
-- (A device that is gone is the foreign key's to report, or took the allocation with it.)
CREATE CONSTRAINT TRIGGER ipam_allocations_device_vpc
	AFTER INSERT OR UPDATE OF device_id, vpc_id ON ipam_allocations
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.device_id IS NOT NULL)
	EXECUTE FUNCTION nexodus_ipam_device_vpc();

-- AFTER DELETE of an allocation: the address goes back to its VPC, unless the VPC itself is
-- being deleted.
CREATE FUNCTION nexodus_ipam_release() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM vpcs WHERE id = OLD.vpc_id) THEN
		INSERT INTO ipam_released (vpc_id, address) VALUES (OLD.vpc_id, OLD.address)
			ON CONFLICT DO NOTHING;
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER ipam_allocations_release AFTER DELETE ON ipam_allocations
	FOR EACH ROW EXECUTE FUNCTION nexodus_ipam_release();

-- Allocates an address of the pool [p_first, p_last] of VPC p_vpc to device p_device (which
-- may be NULL, or inserted later in the transaction) that lies in none of the prefixes of
-- p_avoid, and returns it; NULL when
-- the cursor reached the end of the pool or met too many taken addresses in a row (the
-- caller then searches the pool).  The cursor's row lock is held until the transaction
-- ends.
CREATE FUNCTION nexodus_ipam_take(p_vpc uuid, p_first inet, p_last inet, p_avoid cidr[],
	p_device uuid)
RETURNS inet LANGUAGE plpgsql AS $$
DECLARE
	fam smallint := family(p_first);
	bits integer := CASE family(p_first) WHEN 4 THEN 32 ELSE 128 END;
	cand inet;
	got inet;
	a cidr;
	moved boolean;
	tries integer := 0;
BEGIN
	SELECT c.next INTO cand FROM ipam_cursors c
		WHERE c.vpc_id = p_vpc AND c.family = fam FOR UPDATE;
	IF NOT FOUND THEN
		INSERT INTO ipam_cursors (vpc_id, family, next) VALUES (p_vpc, fam, p_first)
			ON CONFLICT DO NOTHING;
		SELECT c.next INTO cand FROM ipam_cursors c
			WHERE c.vpc_id = p_vpc AND c.family = fam FOR UPDATE;
	END IF;

	-- Released addresses first, the lowest first.
	LOOP
		DELETE FROM ipam_released r
			WHERE r.vpc_id = p_vpc AND r.address = (
				SELECT x.address FROM ipam_released x
				WHERE x.vpc_id = p_vpc AND x.address >= p_first AND x.address <= p_last
				AND NOT (x.address <<= ANY (p_avoid))
				ORDER BY x.address LIMIT 1)
			RETURNING r.address INTO got;
		EXIT WHEN got IS NULL;
		INSERT INTO ipam_allocations (vpc_id, address, device_id) VALUES (p_vpc, got, p_device)
			ON CONFLICT DO NOTHING;
		IF FOUND THEN
			RETURN got;
		END IF;
		-- (taken by request since: forget it)
	END LOOP;

	IF cand < p_first THEN
		cand := p_first;
	END IF;
	LOOP
		-- Out of the advertised prefixes: each move passes the end of one of them.
		LOOP
			moved := false;
			FOREACH a IN ARRAY p_avoid LOOP
				IF family(a) = fam AND cand <<= a THEN
					IF set_masklen(broadcast(a), bits) >= p_last THEN
						RETURN NULL;
					END IF;
					cand := set_masklen(broadcast(a), bits) + 1;
					moved := true;
				END IF;
			END LOOP;
			EXIT WHEN NOT moved;
		END LOOP;
		IF cand > p_last THEN
			RETURN NULL;
		END IF;
		INSERT INTO ipam_allocations (vpc_id, address, device_id) VALUES (p_vpc, cand, p_device)
			ON CONFLICT DO NOTHING;
		IF FOUND THEN
			UPDATE ipam_cursors c SET next = CASE WHEN cand < p_last THEN cand + 1 ELSE cand END
				WHERE c.vpc_id = p_vpc AND c.family = fam;
			RETURN cand;
		END IF;
		-- Taken (by request): the next one, a bounded number of times.
		tries := tries + 1;
		IF cand >= p_last OR tries >= 256 THEN
			UPDATE ipam_cursors c SET next = cand WHERE c.vpc_id = p_vpc AND c.family = fam;
			RETURN NULL;
		END IF;
		cand := cand + 1;
	END LOOP;
END
$$;
