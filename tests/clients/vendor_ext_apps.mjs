// Builds the MCP App view's copy of the official ext-apps client (`App`, `PostMessageTransport`)
// from the packages pinned in this folder, so the view ships the real protocol code and no
// hand-written postMessage. scripts/vendor-ext-apps writes it into vf_mcp/view/;
// tests/test_view_vendor.py rebuilds it and checks the vendored file against the pin.
//
//   node vendor_ext_apps.mjs <out.js> <pin.json>   write both
//   node vendor_ext_apps.mjs --print-pin            print the pin of what would be built
//
// Two bundler settings keep the view small (the package's own app-with-deps.js is 540 KB):
// zod's locales are cut to English (the only one zod loads unless told otherwise), and modules
// whose exports nothing uses are dropped (`sideEffects: false`): App needs only the SDK's
// Protocol, not its HTTP transports, OAuth or JSON-Schema validators.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(HERE, "package.json"));
export const PACKAGES = [
  "@modelcontextprotocol/ext-apps",
  "@modelcontextprotocol/client",
  "@modelcontextprotocol/core",
  "zod",
  "esbuild",
];

function installedVersion(name) {
  const file = path.join(HERE, "node_modules", name, "package.json");
  return JSON.parse(readFileSync(file, "utf8")).version;
}

const englishOnly = {
  name: "zod-locales-english",
  setup(build) {
    build.onLoad({ filter: /zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, (args) => ({
      contents: 'export { default as en } from "./en.js";',
      resolveDir: path.dirname(args.path),
    }));
  },
};

const unusedModulesDrop = {
  name: "unused-modules-drop",
  setup(build) {
    build.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData?.resolved) return undefined;
      const { kind, resolveDir, importer } = args;
      const found = await build.resolve(args.path, {
        kind,
        resolveDir,
        importer,
        pluginData: { resolved: true },
      });
      return found.errors.length ? found : { ...found, sideEffects: false };
    });
  },
};

export async function buildBundle() {
  const versions = Object.fromEntries(PACKAGES.map((name) => [name, installedVersion(name)]));
  const banner =
    `/*! @modelcontextprotocol/ext-apps ${versions["@modelcontextprotocol/ext-apps"]} (MIT), ` +
    `@modelcontextprotocol/client and core ${versions["@modelcontextprotocol/client"]} ` +
    `(Apache-2.0), zod ${versions.zod} (MIT); bundled by scripts/vendor-ext-apps with esbuild ` +
    `${versions.esbuild}. Do not edit: regenerate. */`;
  const built = await esbuild.build({
    stdin: {
      contents: 'export { App, PostMessageTransport } from "@modelcontextprotocol/ext-apps";',
      resolveDir: HERE,
      loader: "js",
    },
    bundle: true,
    minify: true,
    format: "iife",
    globalName: "McpExtApps",
    platform: "browser",
    target: "es2022",
    legalComments: "none",
    banner: { js: banner },
    charset: "utf8",
    write: false,
    plugins: [englishOnly, unusedModulesDrop],
  });
  const text = built.outputFiles[0].text;
  if (/<\/script/i.test(text)) throw new Error("the bundle holds </script and cannot be inlined");
  const sha256 = createHash("sha256").update(text, "utf8").digest("hex");
  return { text, pin: { packages: versions, bytes: Buffer.byteLength(text), sha256 } };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { text, pin } = await buildBundle();
  if (process.argv[2] === "--print-pin") {
    process.stdout.write(JSON.stringify(pin));
  } else {
    const [out, pinFile] = process.argv.slice(2);
    writeFileSync(out, text);
    writeFileSync(pinFile, JSON.stringify(pin, null, 2) + "\n");
    process.stdout.write(`${out}: ${pin.bytes} bytes, sha256 ${pin.sha256}\n`);
  }
}
