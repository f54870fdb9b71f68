// oidc-provider's adapter interface on SQLite (better-sqlite3), written like the adapters in
// oidc-provider's example/ folder: one row per stored model instance, its payload as JSON, and the
// three lookup keys (grantId, userCode, uid) in their own indexed columns.
//
// better-sqlite3 is synchronous: each statement runs to completion on Node's one thread, so a
// read-then-write in oidc-provider (find, then consume) sees no other request in between.
import Database from 'better-sqlite3';

export function openSqlite(path) {
  const db = new Database(path);
  // The same settings as Threshold's SQLite engine (shared/database.py).
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.exec(`
    CREATE TABLE IF NOT EXISTS oidc_models (
      model TEXT NOT NULL,
      id TEXT NOT NULL,
      payload TEXT NOT NULL,
      grant_id TEXT,
      user_code TEXT,
      uid TEXT,
      expires_at INTEGER,
      consumed_at INTEGER,
      PRIMARY KEY (model, id)
    );
    CREATE INDEX IF NOT EXISTS oidc_models_grant_id ON oidc_models (model, grant_id);
    CREATE INDEX IF NOT EXISTS oidc_models_user_code ON oidc_models (model, user_code);
    CREATE INDEX IF NOT EXISTS oidc_models_uid ON oidc_models (model, uid);
    CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, email TEXT NOT NULL);
  `);
  return db;
}

// The people findAccount looks up: a real deployment reads its user store on every grant, as Threshold does.
export function sqliteAccounts(db) {
  const insert = db.prepare('INSERT INTO accounts (id, email) VALUES (?, ?) ON CONFLICT (id) DO NOTHING');
  const select = db.prepare('SELECT id, email FROM accounts WHERE id = ?');
  return {
    async add(id, email) { insert.run(id, email); },
    async find(id) { return select.get(id); },
  };
}

export function sqliteAdapter(db) {
  const statements = {
    upsert: db.prepare(`
      INSERT INTO oidc_models (model, id, payload, grant_id, user_code, uid, expires_at, consumed_at)
      VALUES (@model, @id, @payload, @grantId, @userCode, @uid, @expiresAt, NULL)
      ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, grant_id = excluded.grant_id,
        user_code = excluded.user_code, uid = excluded.uid, expires_at = excluded.expires_at`),
    find: db.prepare(`SELECT payload, consumed_at FROM oidc_models
      WHERE model = ? AND id = ? AND (expires_at IS NULL OR expires_at > ?)`),
    findByUserCode: db.prepare(`SELECT payload, consumed_at FROM oidc_models
      WHERE model = ? AND user_code = ? AND (expires_at IS NULL OR expires_at > ?)`),
    findByUid: db.prepare(`SELECT payload, consumed_at FROM oidc_models
      WHERE model = ? AND uid = ? AND (expires_at IS NULL OR expires_at > ?)`),
    consume: db.prepare('UPDATE oidc_models SET consumed_at = ? WHERE model = ? AND id = ?'),
    destroy: db.prepare('DELETE FROM oidc_models WHERE model = ? AND id = ?'),
    revokeByGrantId: db.prepare('DELETE FROM oidc_models WHERE model = ? AND grant_id = ?'),
  };

  const now = () => Math.floor(Date.now() / 1000);
  const load = (row) => {
    if (!row) return undefined;
    const payload = JSON.parse(row.payload);
    return row.consumed_at === null ? payload : { ...payload, consumed: row.consumed_at };
  };

  return class SqliteAdapter {
    constructor(name) {
      this.name = name;
    }

    async upsert(id, payload, expiresIn) {
      statements.upsert.run({
        model: this.name,
        id,
        payload: JSON.stringify(payload),
        grantId: payload.grantId ?? null,
        userCode: payload.userCode ?? null,
        uid: payload.uid ?? null,
        expiresAt: expiresIn ? now() + expiresIn : null,
      });
    }

    async find(id) {
      return load(statements.find.get(this.name, id, now()));
    }

    async findByUserCode(userCode) {
      return load(statements.findByUserCode.get(this.name, userCode, now()));
    }

    async findByUid(uid) {
      return load(statements.findByUid.get(this.name, uid, now()));
    }

    async consume(id) {
      statements.consume.run(now(), this.name, id);
    }

    async destroy(id) {
      statements.destroy.run(this.name, id);
    }

    async revokeByGrantId(grantId) {
      statements.revokeByGrantId.run(this.name, grantId);
    }
  };
}
