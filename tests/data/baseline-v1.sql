-- A baseline store as schema v1 left it (frozen: what deployed stores hold), for the
-- v1 -> v2 migration tests. @ID@ is the row id type: "INTEGER PRIMARY KEY" on SQLite,
-- "BIGSERIAL PRIMARY KEY" on PostgreSQL. Three runs of acme/app ci/build and one of
-- another job:
--   run 1 (step build): tcp registry.test:443, exe /usr/bin/make (hash aa..), parent registry.test
--   run 2 (step build): the same
--   run 3 (step build): the same plus tcp 127.0.9.9:8080 and /usr/bin/make with hash bb..;
--                       step "test" appears for the first time with tcp 127.0.9.10:80
--   run 4 (acme/other ci/build): tcp 127.0.9.9:8080, first for its own key
CREATE TABLE baseline_schema (version INTEGER NOT NULL);
INSERT INTO baseline_schema (version) VALUES (1);
CREATE TABLE baseline_runs (
 id @ID@,
 repo TEXT NOT NULL, workflow TEXT NOT NULL, job TEXT NOT NULL,
 uid TEXT NOT NULL UNIQUE,
 run_step TEXT, ci_run_id TEXT, commit_sha TEXT, mode TEXT,
 started_at TEXT, finished_at TEXT,
 added_at TEXT NOT NULL, added_epoch BIGINT NOT NULL,
 complete INTEGER NOT NULL, items_left_out BIGINT NOT NULL DEFAULT 0);
CREATE INDEX baseline_runs_key ON baseline_runs (repo, workflow, job, id);
CREATE TABLE baseline_items (
 run_id BIGINT NOT NULL REFERENCES baseline_runs (id) ON DELETE CASCADE,
 step TEXT NOT NULL, kind TEXT NOT NULL, ikey TEXT NOT NULL, name TEXT NOT NULL,
 detail TEXT, count BIGINT NOT NULL,
 PRIMARY KEY (run_id, step, kind, ikey));
CREATE INDEX baseline_items_lookup ON baseline_items (step, kind, ikey);
INSERT INTO baseline_runs (repo, workflow, job, uid, run_step, mode, added_at, added_epoch, complete) VALUES
 ('acme/app', 'ci', 'build', '1111111111111111111111111111111111111111111111111111111111111111', 'build', 'observe', '2026-11-01T00:00:00Z', 1793491200, 1),
 ('acme/app', 'ci', 'build', '2222222222222222222222222222222222222222222222222222222222222222', 'build', 'observe', '2026-11-02T00:00:00Z', 1793577600, 1),
 ('acme/app', 'ci', 'build', '3333333333333333333333333333333333333333333333333333333333333333', 'build', 'observe', '2026-11-03T00:00:00Z', 1793664000, 1),
 ('acme/other', 'ci', 'build', '4444444444444444444444444444444444444444444444444444444444444444', 'build', 'observe', '2026-11-04T00:00:00Z', 1793750400, 1);
INSERT INTO baseline_items (run_id, step, kind, ikey, name, detail, count) VALUES
 (1, 'build', 'destination', 'tcp registry.test:443', 'registry.test', '{"daddr":"127.0.9.1","dport":443,"host":"registry.test","proto":"tcp","verdicts":["allow"]}', 3),
 (1, 'build', 'exe', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa /usr/bin/make', '/usr/bin/make', '{"sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}', 1),
 (1, 'build', 'dns', 'registry.test', 'registry.test', '{"qtypes":["A"],"verdicts":["allow"]}', 1),
 (1, 'build', 'dns_parent', 'registry.test', 'registry.test', '{"example":"registry.test"}', 1),
 (2, 'build', 'destination', 'tcp registry.test:443', 'registry.test', '{"daddr":"127.0.9.1","dport":443,"host":"registry.test","proto":"tcp","verdicts":["allow"]}', 2),
 (2, 'build', 'exe', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa /usr/bin/make', '/usr/bin/make', '{"sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}', 1),
 (2, 'build', 'dns', 'registry.test', 'registry.test', '{"qtypes":["A"],"verdicts":["allow"]}', 1),
 (2, 'build', 'dns_parent', 'registry.test', 'registry.test', '{"example":"registry.test"}', 1),
 (3, 'build', 'destination', 'tcp registry.test:443', 'registry.test', '{"daddr":"127.0.9.1","dport":443,"host":"registry.test","proto":"tcp","verdicts":["allow"]}', 1),
 (3, 'build', 'destination', 'tcp 127.0.9.9:8080', '127.0.9.9', '{"daddr":"127.0.9.9","dport":8080,"family":"ipv4","proto":"tcp","verdicts":["allow"]}', 1),
 (3, 'build', 'exe', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb /usr/bin/make', '/usr/bin/make', '{"sha256":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}', 1),
 (3, 'build', 'dns', 'registry.test', 'registry.test', '{"qtypes":["A"],"verdicts":["allow"]}', 1),
 (3, 'build', 'dns_parent', 'registry.test', 'registry.test', '{"example":"registry.test"}', 1),
 (3, 'test', 'destination', 'tcp 127.0.9.10:80', '127.0.9.10', '{"daddr":"127.0.9.10","dport":80,"family":"ipv4","proto":"tcp","verdicts":["allow"]}', 1),
 (4, 'build', 'destination', 'tcp 127.0.9.9:8080', '127.0.9.9', '{"daddr":"127.0.9.9","dport":8080,"family":"ipv4","proto":"tcp","verdicts":["allow"]}', 1);
