#!/bin/sh
# Rebuild ../markdown.bundle.js (marked + DOMPurify, see markdown.js) with esbuild.
# Installs the pinned npm packages in a temporary directory, so nothing is left in the
# source tree but the bundle. Needs node and npm; run it after changing markdown.js or
# the versions in package.json, and commit the new bundle.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/markdown.js" "$work/"
if [ -f "$here/package-lock.json" ]; then
  cp "$here/package-lock.json" "$work/"
  (cd "$work" && npm ci --no-audit --no-fund)
else
  (cd "$work" && npm install --no-audit --no-fund && cp package-lock.json "$here/")
fi
(cd "$work" && npx esbuild markdown.js --bundle --minify --format=iife \
  --global-name=nbchatMarkdown --target=es2020 --legal-comments=eof \
  --banner:js="/* nbchat panel: marked (MIT, github.com/markedjs/marked) and DOMPurify (MPL-2.0 or Apache-2.0, github.com/cure53/DOMPurify), bundled by markdown-src/build.sh */" \
  --outfile="$here/../markdown.bundle.js")
echo "wrote $here/../markdown.bundle.js"
