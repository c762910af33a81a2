/** Types of run-resources.mjs (plain JavaScript, because the global setup runs outside Jest's transform). */
export declare const TEST_BUCKETS: { packages: string; assets: string; extraAssets: string };
export declare function databaseUrlFor(name: string): string;
export declare function dropDatabase(name: string): Promise<void>;
