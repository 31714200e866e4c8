// Regenerates the zod_*.json fixtures: real z.toJSONSchema output of zod 4.
// Run in a folder with zod 4 installed:
//   npm install --no-audit --no-fund zod@4 && node gen-zod.mjs OUTDIR
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";

const out = process.argv[2] ?? ".";
const schemas = {
  contact: z.object({
    name: z.string().min(1).max(40),
    email: z.email(),
    website: z.url().max(120),
    age: z.number().int().min(0).max(150),
    score: z.number().min(0).max(1),
  }),
  server: z.object({
    host: z.hostname(),
    ipv4: z.ipv4(),
    ipv6: z.ipv6(),
    port: z.number().int().min(1).max(65535),
    weight: z.number().positive().max(100),
    latitude: z.number().min(-90).max(90),
  }),
  signup: z.object({
    email: z.string().min(1).email().max(100),
    plan: z.enum(["free", "pro", "team"]),
    kind: z.literal("signup"),
    referrer: z.url().max(80).optional(),
    discount: z.number().gt(0).lt(0.5).nullable(),
    contacts: z.array(z.email()).min(1).max(3),
  }),
  send_email: z.object({
    to: z.email().describe("Recipient address"),
    cc: z.array(z.email()).max(2).optional(),
    subject: z.string().max(60),
    temperature: z.number().gte(-273.15).lte(1000).describe("any bounded float"),
  }).describe("Send an email"),
};
for (const [name, s] of Object.entries(schemas)) {
  writeFileSync(join(out, `zod_${name}.json`), JSON.stringify(z.toJSONSchema(s), null, 2) + "\n");
}
