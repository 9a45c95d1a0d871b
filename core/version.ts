/** Cadence's version, as in deno.json. */
export const CADENCE_VERSION = "0.1.0";
