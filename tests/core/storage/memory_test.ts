import { MemoryDriver } from "../../../core/storage/memory.ts";
import { driverSuite } from "./driver_suite.ts";

driverSuite(
  "memory",
  (limit) => Promise.resolve({ driver: new MemoryDriver(limit), cleanup: () => Promise.resolve() }),
);
