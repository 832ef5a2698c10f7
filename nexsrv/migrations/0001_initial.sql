-- SPDX-License-Identifier: GPL-2.0-or-later
--
-- nexsrv's database schema, version 1: every object the REST API serves, the IP address
-- allocations, and the machinery of the watch streams.
--
-- Conventions:
-- * Column names are the JSON field names of the API (models.* in the swagger) wherever a
--   column carries a field, so a row maps onto its JSON object without a rename table.
-- * Secrets (registration keys, device tokens) are stored only as SHA-256 hashes (bytea, 32
--   bytes); the clear token exists only in the response that creates it.
-- * Children die with their parents (ON DELETE CASCADE) along the ownership tree
--   user -> organization -> VPC -> {security group, device -> metadata, IP allocation,
--   registration key}; business rules that forbid a delete (a default VPC, a VPC that still
--   has devices) belong to the API.
-- * Watchable tables (vpcs, devices, device_metadata, security_groups) carry a revision from
--   the one global sequence revision_seq, assigned on every insert and on every update that
--   changes the row; a delete leaves a tombstone with a revision of its own.  Within one VPC,
--   revisions are handed out under a transaction-scoped advisory lock on that VPC, so they
--   become visible in revision order: a watcher that has seen revision R of a VPC will never
--   later find a smaller revision of that VPC appear.  Every change is announced with
--   pg_notify('nexodus_changes', '{"kind":...,"type":...,"vpc_id":...,"revision":...}') at
--   commit, which reaches every nexsrv replica sharing the database.
--
-- The migration runner applies this file inside its own transaction: no BEGIN or COMMIT here.

CREATE TABLE schema_version (
	version integer PRIMARY KEY CHECK (version > 0),
	name text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE revision_seq AS bigint;

-- --- helpers -------------------------------------------------------------------------------

-- updated_at of the tables that are not watched.
CREATE FUNCTION nexodus_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.updated_at := now();
	RETURN NEW;
END
$$;

-- The next revision for a change in VPC vpc.  The lock (held until the transaction ends)
-- orders the writers of one VPC: the next one gets its revision only after this one has
-- committed or rolled back.  Its class id 1853387382 is "nxrv" in ASCII.
CREATE FUNCTION nexodus_next_revision(vpc uuid) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_advisory_xact_lock(1853387382, hashtext(vpc::text));
	RETURN nextval('revision_seq');
END
$$;

-- BEFORE INSERT / BEFORE UPDATE (of a changed row) of a watchable table: a new revision.
-- TG_ARGV[0] is the watch kind.  device_metadata rows take their vpc_id from their device.
CREATE FUNCTION nexodus_revision() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	vpc uuid;
BEGIN
	IF TG_TABLE_NAME = 'vpcs' THEN
		vpc := NEW.id;
	ELSE
		IF TG_TABLE_NAME = 'device_metadata' AND NEW.vpc_id IS NULL THEN
			SELECT d.vpc_id INTO vpc FROM devices d WHERE d.id = NEW.device_id;
			IF vpc IS NULL THEN
				RAISE foreign_key_violation USING
					MESSAGE = format('device %s does not exist', NEW.device_id),
					CONSTRAINT = 'device_metadata_device_fkey';
			END IF;
			NEW.vpc_id := vpc;
		END IF;
		vpc := NEW.vpc_id;
	END IF;
	NEW.revision := nexodus_next_revision(vpc);
	NEW.updated_at := now();
	RETURN NEW;
END
$$;

-- AFTER INSERT / AFTER UPDATE (that took a new revision) of a watchable table.
CREATE FUNCTION nexodus_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	vpc uuid;
BEGIN
	IF TG_TABLE_NAME = 'vpcs' THEN
		vpc := NEW.id;
	ELSE
		vpc := NEW.vpc_id;
	END IF;
	PERFORM pg_notify('nexodus_changes',
			  json_build_object('kind', TG_ARGV[0], 'type', 'change', 'vpc_id', vpc,
					    'revision', NEW.revision)::text);
	RETURN NULL;
END
$$;

-- AFTER DELETE of a watchable table: a tombstone holding the row as it was (less secrets),
-- under a revision of its own, and the announcement.
CREATE FUNCTION nexodus_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	vpc uuid;
	obj uuid;
	objkey text;
	rev bigint;
BEGIN
	IF TG_TABLE_NAME = 'vpcs' THEN
		vpc := OLD.id;
	ELSE
		vpc := OLD.vpc_id;
	END IF;
	IF TG_TABLE_NAME = 'device_metadata' THEN
		obj := OLD.device_id;
		objkey := OLD.key;
	ELSE
		obj := OLD.id;
	END IF;
	rev := nexodus_next_revision(vpc);
	INSERT INTO tombstones (revision, kind, id, key, vpc_id, value)
		VALUES (rev, TG_ARGV[0], obj, objkey, vpc, to_jsonb(OLD) - 'bearer_token_hash');
	PERFORM pg_notify('nexodus_changes',
			  json_build_object('kind', TG_ARGV[0], 'type', 'delete', 'vpc_id', vpc,
					    'revision', rev)::text);
	RETURN NULL;
END
$$;

-- --- tenancy -------------------------------------------------------------------------------

-- models.User.  Created on the first authenticated call; idp_subject is the OIDC "sub".
CREATE TABLE users (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	idp_subject text NOT NULL UNIQUE CHECK (idp_subject <> ''),
	username text NOT NULL CHECK (username <> ''),
	full_name text NOT NULL DEFAULT '',
	picture text NOT NULL DEFAULT '',
	email text CHECK (email <> ''),
	email_verified boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_email_idx ON users (lower(email)) WHERE email IS NOT NULL;
CREATE TRIGGER users_touch BEFORE UPDATE ON users
	FOR EACH ROW EXECUTE FUNCTION nexodus_touch();

-- models.Organization.  A user's default organization has the user's id.  Names are unique
-- (a second organization of the same name is a 409).
CREATE TABLE organizations (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	name text NOT NULL UNIQUE CHECK (name <> ''),
	description text NOT NULL DEFAULT '',
	owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX organizations_owner_idx ON organizations (owner_id);
CREATE TRIGGER organizations_touch BEFORE UPDATE ON organizations
	FOR EACH ROW EXECUTE FUNCTION nexodus_touch();

-- models.UserOrganization: who belongs to which organization, with which roles.
CREATE TABLE memberships (
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	roles text[] NOT NULL DEFAULT '{member}'
		CHECK (cardinality(roles) > 0 AND roles <@ '{owner,member}'::text[]),
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

-- models.Invitation: to a known user (user_id) or to an address (email), or both once the
-- address is matched to a user.
CREATE TABLE invitations (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	user_id uuid REFERENCES users (id) ON DELETE CASCADE,
	email text CHECK (email <> ''),
	from_user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	roles text[] NOT NULL DEFAULT '{member}'
		CHECK (cardinality(roles) > 0 AND roles <@ '{owner,member}'::text[]),
	expires_at timestamptz NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK (user_id IS NOT NULL OR email IS NOT NULL)
);
CREATE INDEX invitations_organization_idx ON invitations (organization_id);
CREATE INDEX invitations_user_idx ON invitations (user_id);
CREATE INDEX invitations_email_idx ON invitations (lower(email)) WHERE email IS NOT NULL;
CREATE INDEX invitations_from_user_idx ON invitations (from_user_id);

-- --- networks ------------------------------------------------------------------------------

-- models.VPC.  A user's default VPC has the user's id.  private_cidr: the CIDRs were chosen
-- by the user (not the shared defaults).
CREATE TABLE vpcs (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	description text NOT NULL DEFAULT '',
	ipv4_cidr cidr NOT NULL DEFAULT '100.64.0.0/10' CHECK (family(ipv4_cidr) = 4),
	ipv6_cidr cidr NOT NULL DEFAULT '200::/64' CHECK (family(ipv6_cidr) = 6),
	private_cidr boolean NOT NULL DEFAULT false,
	revision bigint NOT NULL DEFAULT nextval('revision_seq'),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (id, organization_id)
);
CREATE INDEX vpcs_organization_idx ON vpcs (organization_id);
CREATE INDEX vpcs_revision_idx ON vpcs (revision);

-- models.SecurityGroup.  A VPC's default group has the VPC's id.  Rules are arrays of
-- models.SecurityRule; an empty group allows everything.
CREATE TABLE security_groups (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	vpc_id uuid NOT NULL,
	organization_id uuid NOT NULL,
	description text NOT NULL DEFAULT '',
	inbound_rules jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(inbound_rules) = 'array'),
	outbound_rules jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(outbound_rules) = 'array'),
	revision bigint NOT NULL DEFAULT nextval('revision_seq'),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (id, vpc_id),
	FOREIGN KEY (vpc_id, organization_id) REFERENCES vpcs (id, organization_id)
		ON DELETE CASCADE
);
CREATE INDEX security_groups_vpc_revision_idx ON security_groups (vpc_id, revision);
CREATE INDEX security_groups_organization_idx ON security_groups (organization_id);

-- models.RegKey.  The token ("RK:...") is kept only as its SHA-256.  A single-use key is
-- spent once used_at is set; device_id names the device it created.
CREATE TABLE reg_keys (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	vpc_id uuid NOT NULL,
	organization_id uuid NOT NULL,
	token_hash bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
	description text NOT NULL DEFAULT '',
	single_use boolean NOT NULL DEFAULT false,
	expires_at timestamptz,
	security_group_id uuid,
	settings jsonb CHECK (settings IS NULL OR jsonb_typeof(settings) = 'object'),
	device_id uuid,
	used_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	FOREIGN KEY (vpc_id, organization_id) REFERENCES vpcs (id, organization_id)
		ON DELETE CASCADE,
	FOREIGN KEY (security_group_id, vpc_id) REFERENCES security_groups (id, vpc_id)
		ON DELETE SET NULL (security_group_id)
);
CREATE INDEX reg_keys_owner_idx ON reg_keys (owner_id);
CREATE INDEX reg_keys_vpc_idx ON reg_keys (vpc_id);
CREATE INDEX reg_keys_organization_idx ON reg_keys (organization_id);
CREATE INDEX reg_keys_security_group_idx ON reg_keys (security_group_id);
CREATE INDEX reg_keys_device_idx ON reg_keys (device_id);
CREATE TRIGGER reg_keys_touch BEFORE UPDATE ON reg_keys
	FOR EACH ROW EXECUTE FUNCTION nexodus_touch();

-- models.Device.  endpoints: [{source, address}]; ipv4_tunnel_ips / ipv6_tunnel_ips:
-- [{address, cidr}] (their addresses are held in ipam_allocations); the device token
-- ("DT:...") is kept only as its SHA-256.  allowed_ips is derived, not stored.
CREATE TABLE devices (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	vpc_id uuid NOT NULL,
	organization_id uuid NOT NULL,
	owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	public_key text NOT NULL CHECK (public_key <> ''),
	hostname text NOT NULL DEFAULT '',
	os text NOT NULL DEFAULT '',
	endpoints jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(endpoints) = 'array'),
	ipv4_tunnel_ips jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(ipv4_tunnel_ips) = 'array'),
	ipv6_tunnel_ips jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(ipv6_tunnel_ips) = 'array'),
	advertise_cidrs cidr[] NOT NULL DEFAULT '{}',
	relay boolean NOT NULL DEFAULT false,
	symmetric_nat boolean NOT NULL DEFAULT false,
	security_group_id uuid,
	online boolean NOT NULL DEFAULT false,
	online_at timestamptz,
	bearer_token_hash bytea UNIQUE CHECK (octet_length(bearer_token_hash) = 32),
	reg_key_id uuid REFERENCES reg_keys (id) ON DELETE SET NULL,
	revision bigint NOT NULL DEFAULT nextval('revision_seq'),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (vpc_id, public_key),
	UNIQUE (id, vpc_id),
	FOREIGN KEY (vpc_id, organization_id) REFERENCES vpcs (id, organization_id)
		ON DELETE CASCADE,
	FOREIGN KEY (security_group_id, vpc_id) REFERENCES security_groups (id, vpc_id)
		ON DELETE SET NULL (security_group_id)
);
CREATE INDEX devices_vpc_revision_idx ON devices (vpc_id, revision);
CREATE INDEX devices_organization_idx ON devices (organization_id);
CREATE INDEX devices_owner_idx ON devices (owner_id);
CREATE INDEX devices_security_group_idx ON devices (security_group_id);
CREATE INDEX devices_reg_key_idx ON devices (reg_key_id);

ALTER TABLE reg_keys ADD FOREIGN KEY (device_id) REFERENCES devices (id) ON DELETE SET NULL;

-- models.DeviceMetadata: one JSON value per (device, key).  vpc_id follows the device (it is
-- filled in on insert when omitted) so that metadata is watched per VPC.
CREATE TABLE device_metadata (
	device_id uuid NOT NULL,
	key text NOT NULL CHECK (key <> ''),
	vpc_id uuid NOT NULL,
	value jsonb NOT NULL,
	revision bigint NOT NULL DEFAULT nextval('revision_seq'),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (device_id, key),
	CONSTRAINT device_metadata_device_fkey FOREIGN KEY (device_id, vpc_id)
		REFERENCES devices (id, vpc_id) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX device_metadata_vpc_revision_idx ON device_metadata (vpc_id, revision);

-- IPAM: one row per address in use in a VPC.  The primary key makes two concurrent
-- enrollments that pick the same address collide (one of them gets a unique violation and
-- tries the next address).  device_id NULL reserves an address for no device.
CREATE TABLE ipam_allocations (
	vpc_id uuid NOT NULL REFERENCES vpcs (id) ON DELETE CASCADE,
	address inet NOT NULL
		CHECK (masklen(address) = CASE family(address) WHEN 4 THEN 32 ELSE 128 END),
	device_id uuid,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (vpc_id, address),
	FOREIGN KEY (device_id, vpc_id) REFERENCES devices (id, vpc_id)
		ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX ipam_allocations_device_idx ON ipam_allocations (device_id);

-- --- watch machinery -----------------------------------------------------------------------

-- What was deleted, for watchers that resume from a revision older than the delete.  kind is
-- the watch kind; id is the object's id (the device's for device-metadata, with key);
-- value is the row as it was, as JSON, without secrets.
CREATE TABLE tombstones (
	revision bigint PRIMARY KEY,
	kind text NOT NULL CHECK (kind IN ('vpc', 'device', 'device-metadata', 'security-group')),
	id uuid NOT NULL,
	key text,
	vpc_id uuid NOT NULL,
	value jsonb NOT NULL,
	deleted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tombstones_vpc_revision_idx ON tombstones (vpc_id, revision);
CREATE INDEX tombstones_deleted_at_idx ON tombstones (deleted_at);

-- Every tombstone with a revision up to this one has been purged: a watcher resuming from
-- an older revision may have missed a delete and must list again.
CREATE TABLE tombstone_horizon (
	singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	revision bigint NOT NULL DEFAULT 0
);
INSERT INTO tombstone_horizon DEFAULT VALUES;

-- Purges the tombstones older than retention, always a prefix in revision order so that the
-- horizon is exact; returns how many went.
CREATE FUNCTION nexodus_gc_tombstones(retention interval) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	upto bigint;
	n bigint;
BEGIN
	SELECT max(revision) INTO upto FROM tombstones WHERE deleted_at < now() - retention;
	IF upto IS NULL THEN
		RETURN 0;
	END IF;
	DELETE FROM tombstones WHERE revision <= upto;
	GET DIAGNOSTICS n = ROW_COUNT;
	UPDATE tombstone_horizon SET revision = greatest(revision, upto);
	RETURN n;
END
$$;

-- The triggers of the watchable tables.
CREATE TRIGGER vpcs_revision_insert BEFORE INSERT ON vpcs
	FOR EACH ROW EXECUTE FUNCTION nexodus_revision('vpc');
CREATE TRIGGER vpcs_revision_update BEFORE UPDATE ON vpcs
	FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION nexodus_revision('vpc');
CREATE TRIGGER vpcs_notify AFTER INSERT ON vpcs
	FOR EACH ROW EXECUTE FUNCTION nexodus_notify_change('vpc');
CREATE TRIGGER vpcs_notify_update AFTER UPDATE ON vpcs
	FOR EACH ROW WHEN (OLD.revision IS DISTINCT FROM NEW.revision)
	EXECUTE FUNCTION nexodus_notify_change('vpc');
CREATE TRIGGER vpcs_tombstone AFTER DELETE ON vpcs
	FOR EACH ROW EXECUTE FUNCTION nexodus_tombstone('vpc');

CREATE TRIGGER security_groups_revision_insert BEFORE INSERT ON security_groups
	FOR EACH ROW EXECUTE FUNCTION nexodus_revision('security-group');
CREATE TRIGGER security_groups_revision_update BEFORE UPDATE ON security_groups
	FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
	EXECUTE FUNCTION nexodus_revision('security-group');
CREATE TRIGGER security_groups_notify AFTER INSERT ON security_groups
	FOR EACH ROW EXECUTE FUNCTION nexodus_notify_change('security-group');
CREATE TRIGGER security_groups_notify_update AFTER UPDATE ON security_groups
	FOR EACH ROW WHEN (OLD.revision IS DISTINCT FROM NEW.revision)
	EXECUTE FUNCTION nexodus_notify_change('security-group');
CREATE TRIGGER security_groups_tombstone AFTER DELETE ON security_groups
	FOR EACH ROW EXECUTE FUNCTION nexodus_tombstone('security-group');

CREATE TRIGGER devices_revision_insert BEFORE INSERT ON devices
	FOR EACH ROW EXECUTE FUNCTION nexodus_revision('device');
CREATE TRIGGER devices_revision_update BEFORE UPDATE ON devices
	FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
	EXECUTE FUNCTION nexodus_revision('device');
CREATE TRIGGER devices_notify AFTER INSERT ON devices
	FOR EACH ROW EXECUTE FUNCTION nexodus_notify_change('device');
CREATE TRIGGER devices_notify_update AFTER UPDATE ON devices
	FOR EACH ROW WHEN (OLD.revision IS DISTINCT FROM NEW.revision)
	EXECUTE FUNCTION nexodus_notify_change('device');
CREATE TRIGGER devices_tombstone AFTER DELETE ON devices
	FOR EACH ROW EXECUTE FUNCTION nexodus_tombstone('device');

CREATE TRIGGER device_metadata_revision_insert BEFORE INSERT ON device_metadata
	FOR EACH ROW EXECUTE FUNCTION nexodus_revision('device-metadata');
CREATE TRIGGER device_metadata_revision_update BEFORE UPDATE ON device_metadata
	FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
	EXECUTE FUNCTION nexodus_revision('device-metadata');
CREATE TRIGGER device_metadata_notify AFTER INSERT ON device_metadata
	FOR EACH ROW EXECUTE FUNCTION nexodus_notify_change('device-metadata');
CREATE TRIGGER device_metadata_notify_update AFTER UPDATE ON device_metadata
	FOR EACH ROW WHEN (OLD.revision IS DISTINCT FROM NEW.revision)
	EXECUTE FUNCTION nexodus_notify_change('device-metadata');
CREATE TRIGGER device_metadata_tombstone AFTER DELETE ON device_metadata
	FOR EACH ROW EXECUTE FUNCTION nexodus_tombstone('device-metadata');
