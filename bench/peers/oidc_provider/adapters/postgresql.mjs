// oidc-provider's adapter interface on PostgreSQL (pg), the same table as adapters/sqlite.mjs:
// one row per stored model instance, its payload as jsonb, the lookup keys in indexed columns.
import pg from 'pg';

export async function openPostgresql(connectionString) {
  const pool = new pg.Pool({ connectionString, max: 10 });
  await pool.query(`
    CREATE TABLE IF NOT EXISTS oidc_models (
      model text NOT NULL,
      id text NOT NULL,
      payload jsonb NOT NULL,
      grant_id text,
      user_code text,
      uid text,
      expires_at timestamptz,
      consumed_at integer,
      PRIMARY KEY (model, id)
    );
    CREATE INDEX IF NOT EXISTS oidc_models_grant_id ON oidc_models (model, grant_id);
    CREATE INDEX IF NOT EXISTS oidc_models_user_code ON oidc_models (model, user_code);
    CREATE INDEX IF NOT EXISTS oidc_models_uid ON oidc_models (model, uid);
    CREATE TABLE IF NOT EXISTS accounts (id text PRIMARY KEY, email text NOT NULL);
  `);
  return pool;
}

// The people findAccount looks up: a real deployment reads its user store on every grant, as Threshold does.
export function postgresqlAccounts(pool) {
  return {
    async add(id, email) {
      await pool.query({
        name: 'accounts-insert',
        text: 'INSERT INTO accounts (id, email) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING',
        values: [id, email],
      });
    },
    async find(id) {
      const result = await pool.query({
        name: 'accounts-select', text: 'SELECT id, email FROM accounts WHERE id = $1', values: [id],
      });
      return result.rows[0];
    },
  };
}

export function postgresqlAdapter(pool) {
  const live = '(expires_at IS NULL OR expires_at > now())';
  const load = (result) => {
    const row = result.rows[0];
    if (!row) return undefined;
    return row.consumed_at === null ? row.payload : { ...row.payload, consumed: row.consumed_at };
  };

  return class PostgresqlAdapter {
    constructor(name) {
      this.name = name;
    }

    async upsert(id, payload, expiresIn) {
      await pool.query({
        name: 'oidc-upsert',
        text: `INSERT INTO oidc_models (model, id, payload, grant_id, user_code, uid, expires_at)
          VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))
          ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, grant_id = excluded.grant_id,
            user_code = excluded.user_code, uid = excluded.uid, expires_at = excluded.expires_at`,
        values: [this.name, id, payload, payload.grantId ?? null, payload.userCode ?? null, payload.uid ?? null,
          expiresIn ?? null],
      });
    }

    async find(id) {
      return load(await pool.query({
        name: 'oidc-find',
        text: `SELECT payload, consumed_at FROM oidc_models WHERE model = $1 AND id = $2 AND ${live}`,
        values: [this.name, id],
      }));
    }

    async findByUserCode(userCode) {
      return load(await pool.query({
        name: 'oidc-find-by-user-code',
        text: `SELECT payload, consumed_at FROM oidc_models WHERE model = $1 AND user_code = $2 AND ${live}`,
        values: [this.name, userCode],
      }));
    }

    async findByUid(uid) {
      return load(await pool.query({
        name: 'oidc-find-by-uid',
        text: `SELECT payload, consumed_at FROM oidc_models WHERE model = $1 AND uid = $2 AND ${live}`,
        values: [this.name, uid],
      }));
    }

    async consume(id) {
      await pool.query({
        name: 'oidc-consume',
        text: 'UPDATE oidc_models SET consumed_at = extract(epoch FROM now())::integer WHERE model = $1 AND id = $2',
        values: [this.name, id],
      });
    }

    async destroy(id) {
      await pool.query({
        name: 'oidc-destroy',
        text: 'DELETE FROM oidc_models WHERE model = $1 AND id = $2',
        values: [this.name, id],
      });
    }

    async revokeByGrantId(grantId) {
      await pool.query({
        name: 'oidc-revoke-by-grant-id',
        text: 'DELETE FROM oidc_models WHERE model = $1 AND grant_id = $2',
        values: [this.name, grantId],
      });
    }
  };
}
