#!/usr/bin/env node
// `npx sluice` from the repository: Node 24 runs the TypeScript entry directly (type stripping).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(`sluice needs Node.js 24 (this is ${process.version}); run it through npx or npm run`);
  process.exit(2);
}
await import('../main.ts');
