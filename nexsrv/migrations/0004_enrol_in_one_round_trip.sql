-- SPDX-License-Identifier: GPL-2.0-or-later
--
-- nexsrv's database schema, version 4: an enrolment takes its addresses in the statement
-- that inserts its device.
--
-- An enrolment took its addresses (nexodus_ipam_take(), which locks the pool's cursor until
-- commit), read them back, then inserted its device and committed: the cursor stayed locked
-- across three round trips to nexsrv, and the enrolments of a VPC, which take that lock in
-- turn, waited for them all.  Now the insert takes the addresses itself and COMMIT follows it
-- in the same round trip.  Where the cursor has no address to give, the statement fails with
-- SQLSTATE NXI01 and nexsrv runs the enrolment again the long way, searching the pool.
--
-- The migration runner applies this file inside its own transaction: no BEGIN or COMMIT here.

CREATE FUNCTION nexodus_ipam_take_or_fail(p_vpc uuid, p_first inet, p_last inet,
	p_avoid cidr[], p_device uuid)
RETURNS inet LANGUAGE plpgsql AS $$
DECLARE
	got inet := nexodus_ipam_take(p_vpc, p_first, p_last, p_avoid, p_device);
BEGIN
	IF got IS NULL THEN
		RAISE EXCEPTION 'no address at the cursor of pool %-% of VPC %',
			host(p_first), host(p_last), p_vpc USING ERRCODE = 'NXI01';
	END IF;
	RETURN got;
END
$$;
