-- SPDX-License-Identifier: GPL-2.0-or-later
--
-- nexsrv's database schema, version 3: moving addresses.  Several devices of a VPC may
-- advertise the same prefix (a host route to a floating address, or a subnet two routers
-- reach); peers must route it to exactly one of them.  Each advertised prefix is a claim
-- of its device, with the time the device first advertised it; per (VPC, prefix) the
-- controller elects one active holder, and publishes in each device its active_cidrs: the
-- part of its advertise_cidrs it holds.
--
-- The election, for a prefix: among the claimants that are eligible (online, or offline
-- for less than the grace; a device that never watched counts from its creation), the
-- highest priority wins, then the most recent claim, then the lowest device id.  "Most
-- recent" is the time of the claim or, when later, the time the claim last became active:
-- a holder that took over from a device that went away keeps the prefix when that device
-- comes back (no flapping); a new claim, or a higher priority, takes it over.  When no
-- claimant is eligible the current holder keeps the prefix; a prefix with claimants always
-- has a holder.
--
-- Everything happens in SQL, in the transaction of the change, under the VPC's writer lock
-- (the advisory lock of nexodus_next_revision()), so replicas sharing the database agree:
-- triggers on devices keep the claims and re-elect when a device's advertise_cidrs or
-- priority change, when it is created or deleted and when it comes online; a device that
-- went offline loses its prefixes once the grace has passed, when nexsrv calls
-- nexodus_prefix_failover() (every replica does, twice a second).  active_cidrs is only
-- written where it changes, so the revision trigger announces exactly the devices whose
-- active set changed.  The grace comes from the setting nexodus.prefix_failover_grace_ms
-- (nexsrv sets it in the transactions that may elect), 3000 when unset.
--
-- Exit nodes: a device with exit_node may advertise a default route (0.0.0.0/0, ::/0);
-- others may not.
--
-- The migration runner applies this file inside its own transaction: no BEGIN or COMMIT here.

ALTER TABLE devices
	ADD COLUMN active_cidrs cidr[] NOT NULL DEFAULT '{}',
	ADD COLUMN priority integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 1000),
	ADD COLUMN exit_node boolean NOT NULL DEFAULT false,
	ADD COLUMN offline_at timestamptz,
	ADD CONSTRAINT devices_default_route_exit_node CHECK (exit_node OR NOT (
		'0.0.0.0/0'::cidr = ANY (advertise_cidrs) OR '::/0'::cidr = ANY (advertise_cidrs)));

-- Holders that are offline: what nexodus_prefix_failover() looks at, usually few rows.
CREATE INDEX devices_offline_holders_idx ON devices (vpc_id)
	WHERE active_cidrs <> '{}' AND NOT online;

-- One row per advertised prefix of a device.  active_at: when this claim last became the
-- active one (NULL: never).
CREATE TABLE device_prefix_claims (
	vpc_id uuid NOT NULL REFERENCES vpcs (id) ON DELETE CASCADE,
	device_id uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	prefix cidr NOT NULL,
	claimed_at timestamptz NOT NULL,
	active_at timestamptz,
	PRIMARY KEY (device_id, prefix)
);
CREATE INDEX device_prefix_claims_vpc_prefix_idx ON device_prefix_claims (vpc_id, prefix);

-- The grace of the current transaction.
CREATE FUNCTION nexodus_prefix_grace() RETURNS interval LANGUAGE sql STABLE AS $$
	SELECT coalesce(nullif(current_setting('nexodus.prefix_failover_grace_ms', true), '')
			::integer, 3000) * interval '1 millisecond'
$$;

-- Elects the holder of each prefix of p_prefixes in VPC p_vpc and updates active_cidrs of
-- the devices whose set changes: the claimants, and p_device (may be NULL: a device that
-- just withdrew some of these prefixes).  Returns how many devices changed.
CREATE FUNCTION nexodus_prefix_elect(p_vpc uuid, p_prefixes cidr[], p_device uuid,
	p_grace interval)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	t timestamptz;
	wp cidr[];
	wd uuid[];
	n integer;
BEGIN
	IF p_prefixes IS NULL OR p_prefixes = '{}' THEN
		RETURN 0;
	END IF;
	PERFORM pg_advisory_xact_lock(1853387382, hashtext(p_vpc::text));
	t := clock_timestamp();

	-- The winner of each prefix that has claimants.
	SELECT coalesce(array_agg(w.prefix), '{}'), coalesce(array_agg(w.device_id), '{}')
		INTO wp, wd
	FROM (
		SELECT DISTINCT ON (c.prefix) c.prefix, c.device_id
		FROM device_prefix_claims c JOIN devices d ON d.id = c.device_id
		WHERE c.vpc_id = p_vpc AND c.prefix = ANY (p_prefixes)
		ORDER BY c.prefix,
			CASE WHEN d.online OR coalesce(d.offline_at, d.created_at) > t - p_grace
				THEN 0
			WHEN c.prefix = ANY (d.active_cidrs) THEN 1
			ELSE 2 END,
			d.priority DESC,
			greatest(c.claimed_at, c.active_at) DESC,
			c.device_id
	) w;

	-- Claims that become active now.
	UPDATE device_prefix_claims c SET active_at = t
	FROM unnest(wp, wd) AS w(prefix, device_id), devices d
	WHERE c.device_id = w.device_id AND c.prefix = w.prefix AND d.id = w.device_id
		AND NOT (w.prefix = ANY (d.active_cidrs));

	-- The new active sets, in the order of advertise_cidrs.
	UPDATE devices d SET active_cidrs = x.active
	FROM (
		SELECT e.id, ARRAY(
			SELECT a FROM unnest(e.advertise_cidrs) WITH ORDINALITY AS u(a, i)
			WHERE (a = ANY (e.active_cidrs) AND NOT (a = ANY (p_prefixes)))
				OR EXISTS (SELECT 1 FROM unnest(wp, wd) AS w(prefix, device_id)
					   WHERE w.prefix = a AND w.device_id = e.id)
			ORDER BY i) AS active
		FROM devices e
		WHERE e.vpc_id = p_vpc AND (e.id = p_device OR e.id IN (
			SELECT c.device_id FROM device_prefix_claims c
			WHERE c.vpc_id = p_vpc AND c.prefix = ANY (p_prefixes)))
	) x
	WHERE d.id = x.id AND d.active_cidrs IS DISTINCT FROM x.active;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

-- AFTER INSERT / UPDATE OF advertise_cidrs, priority / DELETE of a device that advertises
-- (or advertised) something: its claims follow its advertise_cidrs, and its prefixes (old
-- and new) are elected again.
CREATE FUNCTION nexodus_prefix_claims() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	t timestamptz;
	touched cidr[];
BEGIN
	IF TG_OP = 'DELETE' THEN
		-- (A VPC being deleted takes everything with it: nothing to elect.)
		IF NOT EXISTS (SELECT 1 FROM vpcs WHERE id = OLD.vpc_id) THEN
			RETURN NULL;
		END IF;
		DELETE FROM device_prefix_claims WHERE device_id = OLD.id;
		PERFORM nexodus_prefix_elect(OLD.vpc_id, OLD.advertise_cidrs, NULL,
					     nexodus_prefix_grace());
		RETURN NULL;
	END IF;
	PERFORM pg_advisory_xact_lock(1853387382, hashtext(NEW.vpc_id::text));
	t := clock_timestamp();
	DELETE FROM device_prefix_claims c
		WHERE c.device_id = NEW.id AND NOT (c.prefix = ANY (NEW.advertise_cidrs));
	INSERT INTO device_prefix_claims (vpc_id, device_id, prefix, claimed_at)
		SELECT NEW.vpc_id, NEW.id, a, t FROM unnest(NEW.advertise_cidrs) AS a
		ON CONFLICT DO NOTHING;
	touched := NEW.advertise_cidrs;
	IF TG_OP = 'UPDATE' THEN
		touched := touched || OLD.advertise_cidrs;
	END IF;
	PERFORM nexodus_prefix_elect(NEW.vpc_id, touched, NEW.id, nexodus_prefix_grace());
	RETURN NULL;
END
$$;

-- AFTER UPDATE OF online of a device that came online: it may take its prefixes back (a
-- higher priority) or take those nobody eligible held.
CREATE FUNCTION nexodus_prefix_online() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM nexodus_prefix_elect(NEW.vpc_id, NEW.advertise_cidrs, NEW.id,
				     nexodus_prefix_grace());
	RETURN NULL;
END
$$;

CREATE TRIGGER devices_prefix_claims_insert AFTER INSERT ON devices
	FOR EACH ROW WHEN (NEW.advertise_cidrs <> '{}')
	EXECUTE FUNCTION nexodus_prefix_claims();
CREATE TRIGGER devices_prefix_claims_update AFTER UPDATE OF advertise_cidrs, priority ON devices
	FOR EACH ROW WHEN (OLD.advertise_cidrs IS DISTINCT FROM NEW.advertise_cidrs
			   OR OLD.priority IS DISTINCT FROM NEW.priority)
	EXECUTE FUNCTION nexodus_prefix_claims();
CREATE TRIGGER devices_prefix_claims_delete AFTER DELETE ON devices
	FOR EACH ROW WHEN (OLD.advertise_cidrs <> '{}')
	EXECUTE FUNCTION nexodus_prefix_claims();
CREATE TRIGGER devices_prefix_online AFTER UPDATE OF online ON devices
	FOR EACH ROW WHEN (NEW.online AND NOT OLD.online AND NEW.advertise_cidrs <> '{}')
	EXECUTE FUNCTION nexodus_prefix_online();

-- A device's watch stream opened: marks it online (the VPC's writer lock first, then the
-- row, the order every election takes them in).  p_device: a device token's own device, or
-- NULL; p_owner: the person who must own it, or NULL.  Returns the device and the time
-- recorded, no row when there is no such device.
CREATE FUNCTION nexodus_device_online(p_vpc uuid, p_public_key text, p_device uuid,
	p_owner uuid, p_grace_ms integer)
RETURNS TABLE (id uuid, online_at text) LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
	PERFORM set_config('nexodus.prefix_failover_grace_ms', p_grace_ms::text, true);
	PERFORM pg_advisory_xact_lock(1853387382, hashtext(p_vpc::text));
	RETURN QUERY UPDATE devices d SET online = true, online_at = clock_timestamp()
		WHERE d.vpc_id = p_vpc AND d.public_key = p_public_key
			AND (p_device IS NULL OR d.id = p_device)
			AND (p_owner IS NULL OR d.owner_id = p_owner)
		RETURNING d.id, d.online_at::text;
END
$$;

-- A device's watch stream ended: offline since now, unless a newer stream (online_at)
-- marked it online since.  Whether it was marked.
CREATE FUNCTION nexodus_device_offline(p_device uuid, p_online_at timestamptz)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	vpc uuid;
BEGIN
	SELECT d.vpc_id INTO vpc FROM devices d WHERE d.id = p_device;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM pg_advisory_xact_lock(1853387382, hashtext(vpc::text));
	UPDATE devices d SET online = false, offline_at = clock_timestamp()
		WHERE d.id = p_device AND d.online AND d.online_at = p_online_at;
	RETURN FOUND;
END
$$;

-- The prefixes whose holder is offline past the grace while another claimant is eligible
-- move to the best eligible claimant.  Returns how many devices changed.
CREATE FUNCTION nexodus_prefix_failover(p_grace interval) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	t timestamptz := clock_timestamp();
	n integer := 0;
BEGIN
	FOR r IN
		SELECT c.vpc_id, array_agg(DISTINCT c.prefix) AS prefixes
		FROM devices d JOIN device_prefix_claims c
			ON c.device_id = d.id AND c.prefix = ANY (d.active_cidrs)
		WHERE d.active_cidrs <> '{}' AND NOT d.online
			AND coalesce(d.offline_at, d.created_at) <= t - p_grace
			AND EXISTS (
				SELECT 1 FROM device_prefix_claims o JOIN devices od
					ON od.id = o.device_id
				WHERE o.vpc_id = c.vpc_id AND o.prefix = c.prefix
					AND o.device_id <> d.id AND (od.online OR
					coalesce(od.offline_at, od.created_at) > t - p_grace))
		GROUP BY c.vpc_id ORDER BY c.vpc_id
	LOOP
		n := n + nexodus_prefix_elect(r.vpc_id, r.prefixes, NULL, p_grace);
	END LOOP;
	RETURN n;
END
$$;

-- The claims of the devices that advertise already, as of their creation, and their
-- holders.
INSERT INTO device_prefix_claims (vpc_id, device_id, prefix, claimed_at)
	SELECT d.vpc_id, d.id, a, d.created_at FROM devices d, unnest(d.advertise_cidrs) AS a
	ON CONFLICT DO NOTHING;
SELECT nexodus_prefix_elect(v.vpc_id, v.prefixes, NULL, nexodus_prefix_grace())
	FROM (SELECT vpc_id, array_agg(DISTINCT prefix) AS prefixes FROM device_prefix_claims
	      GROUP BY vpc_id ORDER BY vpc_id) v;
