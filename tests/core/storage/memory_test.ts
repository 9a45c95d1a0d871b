import { MemoryDriver } from "../../../core/storage/memory.ts";
import { driverSuite } from "./driver_suite.ts";

driverSuite(
  "memory",
  (opts) => Promise.resolve({ driver: new MemoryDriver(opts), cleanup: () => Promise.resolve() }),
);
