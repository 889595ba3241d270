/** The path of the package's cnn.so. */
export function getLoadablePath(): string;
/** Loads cnn.so into db, a better-sqlite3 Database. */
export function load(db: { loadExtension(path: string): unknown }): void;
