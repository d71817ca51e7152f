-- The 1,000,000-claim data set of docs/benchmarks.md ("The console's overview"): run on a
-- migrated PostgreSQL database (`cpor-worker migrate`), then start `run` with a schedule that
-- does not fire (e.g. cron "0 0 0 1 1 *", --no-initial-pass) and time GET /?format=json.
ALTER TABLE claims DISABLE TRIGGER cpor_claims_changed;
INSERT INTO claims (id, status, partner_id, partner_name, partner_email, customer_name, customer_email, products, country, locale, submitted_at, updated_at, version)
SELECT 'C' || lpad(g::text, 8, '0'), 'submitted', 'P-' || (g % 5000), 'Partner ' || (g % 5000), 'p' || (g % 5000) || '@example.com', 'Customer ' || g, 'c' || g || '@example.com', 'X', 'SE', 'sv-SE',
       now() - ((g % 20) || ' days')::interval, now(), 1
FROM generate_series(1, 1000000) g;
INSERT INTO cpor_timers (claim_id, timer, started_at, due_at, claim_version, state)
SELECT 'C' || lpad(g::text, 8, '0'), 'review_start_sla', now() - ((g % 20) || ' days')::interval, now() + (((g % 20) - 12) || ' days')::interval, 1, 'pending'
FROM generate_series(1, 1000000) g;
INSERT INTO cpor_claim_sync (claim_id, version, fingerprint, problem, synced_at)
SELECT 'C' || lpad(g::text, 8, '0'), 1, 'x', CASE WHEN g % 1000 = 0 THEN 'bad' END, now() FROM generate_series(1, 1000000) g;
INSERT INTO cpor_sla_alerts (claim_id, timer, started_at, due_at, raised_at)
SELECT 'C' || lpad(g::text, 8, '0'), 'review_start_sla', now() - interval '20 days', now() - interval '10 days', now() FROM generate_series(1, 1000000, 50) g;
INSERT INTO cpor_claim_holds SELECT 'C' || lpad(g::text, 8, '0'), 'bench', 'bench', now() FROM generate_series(1, 1000000, 10000) g;
DELETE FROM cpor_claim_changes;
ANALYZE;
