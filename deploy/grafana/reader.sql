-- Grafana's own login, a member of dosewatch_grafana (created by migration 0014), which reads
-- the `reporting` views only. Run with psql after `dosewatch migrate`; idempotent: it sets the
-- password again on every run, so deploy/.env stays the one place the password lives.
--   psql -v grafana_password="$GRAFANA_DB_PASSWORD" -f reader.sql
SELECT format('CREATE ROLE grafana LOGIN PASSWORD %L IN ROLE dosewatch_grafana', :'grafana_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'grafana') \gexec
SELECT format('ALTER ROLE grafana LOGIN PASSWORD %L', :'grafana_password') \gexec
GRANT dosewatch_grafana TO grafana;
-- Nothing more: the tables in `public` grant nothing to PUBLIC, so patients' names, phones and
-- addresses stay out of Grafana's reach (tests/integration/test_grafana.py checks it).
