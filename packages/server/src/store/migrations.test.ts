import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import type { Db } from "./db.js";
import { MIGRATIONS, type Migration, migrate } from "./migrations.js";
import { openPostgres } from "./postgres.js";
import { openSqlite } from "./sqlite.js";

// The runner itself, with migrations of the tests' own: each runs whole (never split on `;`) in a
// transaction that also records its id, on both engines.
const pgUrl = process.env.KEYWARD_TEST_DATABASE_URL;
if (!pgUrl) console.warn("[migrations] PostgreSQL cases skipped: KEYWARD_TEST_DATABASE_URL is not set");

interface Scratch {
  db: Db;
  tableExists(name: string): Promise<boolean>;
  close(): Promise<void>;
}

const engines: { name: "sqlite" | "postgres"; skip: boolean; open(): Promise<Scratch> }[] = [
  {
    name: "sqlite",
    skip: false,
    async open() {
      const db = openSqlite(":memory:");
      return {
        db,
        tableExists: async (name) =>
          (await db.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = $1", [name])).length > 0,
        close: () => db.close(),
      };
    },
  },
  {
    name: "postgres",
    skip: !pgUrl,
    async open() {
      // A schema of its own (search_path): the tables and the function below are dropped with it.
      const schema = `kwt_mig_${randomBytes(5).toString("hex")}`;
      const db = await openPostgres(pgUrl as string, { schema });
      return {
        db,
        tableExists: async (name) =>
          (
            await db.query(
              "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1",
              [name],
            )
          ).length > 0,
        close: async () => {
          await db.exec(`DROP SCHEMA ${schema} CASCADE`);
          await db.close();
        },
      };
    },
  },
];

const recorded = async (db: Db) =>
  (await db.query<{ id: number }>("SELECT id FROM keyward_migrations ORDER BY id")).map((r) => Number(r.id));

/** Semicolons at line ends inside a function body and inside a string literal: splitting on ";\n" cuts both. */
const BODIES: Record<"sqlite" | "postgres", string> = {
  postgres: `
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, tag TEXT);
CREATE FUNCTION notes_tag() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.body = '' THEN
    RAISE EXCEPTION 'a note needs a body;';
  END IF;
  NEW.tag := 'tagged;';
  RETURN NEW;
END;
$$;
CREATE TRIGGER notes_tag BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION notes_tag();
INSERT INTO notes (id, body) VALUES (1, 'first;
second');
`,
  sqlite: `
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, tag TEXT);
CREATE TABLE notes_log (note_id INTEGER NOT NULL, line TEXT NOT NULL);
CREATE TRIGGER notes_tag AFTER INSERT ON notes BEGIN
  UPDATE notes SET tag = 'tagged;' WHERE id = NEW.id;
  INSERT INTO notes_log (note_id, line) VALUES (NEW.id, 'logged;
twice');
END;
INSERT INTO notes (id, body) VALUES (1, 'first;
second');
`,
};

for (const engine of engines) {
  describe.skipIf(engine.skip)(`migrations on ${engine.name}`, () => {
    let scratch: Scratch | undefined;
    const open = async () => {
      scratch = await engine.open();
      return scratch;
    };
    afterEach(async () => {
      await scratch?.close();
      scratch = undefined;
    });

    it("runs a migration whole: a function or trigger body and a string literal keep their semicolons", async () => {
      const { db } = await open();
      await migrate(db, { migrations: [{ id: 1, name: "notes", sql: BODIES[engine.name] }] });
      expect(await recorded(db)).toEqual([1]);
      await db.exec("INSERT INTO notes (id, body) VALUES (2, 'later')");
      expect(await db.query("SELECT id, body, tag FROM notes ORDER BY id")).toEqual([
        { id: 1, body: "first;\nsecond", tag: "tagged;" },
        { id: 2, body: "later", tag: "tagged;" },
      ]);
      if (engine.name === "postgres") {
        await expect(db.exec("INSERT INTO notes (id, body) VALUES (3, '')")).rejects.toThrow("a note needs a body;");
      } else {
        expect(await db.query("SELECT note_id, line FROM notes_log ORDER BY note_id")).toEqual([
          { note_id: 1, line: "logged;\ntwice" },
          { note_id: 2, line: "logged;\ntwice" },
        ]);
      }
    });

    it("a migration that fails half way leaves no table and no recorded version; the ones before it stay", async () => {
      const { db, tableExists } = await open();
      const first: Migration = { id: 1, name: "kept", sql: "CREATE TABLE kept (id INTEGER PRIMARY KEY);" };
      const broken: Migration = {
        id: 2,
        name: "half way",
        sql: `
CREATE TABLE half_done (id INTEGER PRIMARY KEY);
INSERT INTO half_done (id) VALUES (1);
INSERT INTO no_such_table (id) VALUES (1);
`,
      };
      await expect(migrate(db, { migrations: [first, broken] })).rejects.toThrow(/no_such_table/);
      expect(await recorded(db)).toEqual([1]);
      expect(await tableExists("kept")).toBe(true);
      expect(await tableExists("half_done")).toBe(false);

      // Fixed, the same id applies on the next start; the one already applied is not run again.
      const fixed = { ...broken, sql: broken.sql.replace("INSERT INTO no_such_table (id) VALUES (1);", "") };
      await migrate(db, { migrations: [first, fixed] });
      expect(await recorded(db)).toEqual([1, 2]);
      expect(await db.query("SELECT id FROM half_done")).toEqual([{ id: 1 }]);
    });

    it("records each shipped migration once: a second run changes nothing", async () => {
      const { db } = await open();
      await migrate(db);
      const ids = MIGRATIONS.map((m) => m.id);
      expect(await recorded(db)).toEqual(ids);
      await migrate(db);
      expect(await recorded(db)).toEqual(ids);
    });
  });
}
