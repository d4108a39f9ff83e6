#!/usr/bin/env bash
# Builds and runs the Java interop suite (AtlasInterop.java) offline with javac and
# Debian's jars (libgrpc-java 1.41 with netty, protobuf-compiler-grpc-java-plugin,
# libprotobuf-java, libnetty-java, libgoogle-common-protos-java, libperfmark-java,
# libgoogle-gson-java; protobuf-compiler): see ../shared/notes/polyglot-clients.md.
# Stubs are generated from proto/ each run. Run by tests/interop/run.sh (GATEWAY_ADDR,
# EMULATOR_URL, ATLAS_ORG_ID set). Environment: INTEROP_JAVA_DIR (default target/interop-java).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
OUT="${INTEROP_JAVA_DIR:-$ROOT/target/interop-java}"
PLUGIN=/usr/bin/grpc_java_plugin
J=/usr/share/java

for tool in javac java jar protoc "$PLUGIN"; do
  command -v "$tool" >/dev/null || {
    echo "java suite: $tool not found: apt-get install default-jdk-headless libgrpc-java protobuf-compiler-grpc-java-plugin libprotobuf-java libnetty-java libgoogle-common-protos-java libperfmark-java libgoogle-gson-java protobuf-compiler" >&2
    exit 1
  }
done

CP=""
for jar in grpc-api grpc-core grpc-netty grpc-protobuf grpc-protobuf-lite grpc-stub grpc-context \
  protobuf guava proto-google-common-protos perfmark-api error_prone_annotations \
  opencensus-api jsr305 gson; do
  [[ -f "$J/$jar.jar" ]] || { echo "java suite: $J/$jar.jar missing" >&2; exit 1; }
  CP="$CP:$J/$jar.jar"
done
# The individual netty jars: netty-all.jar is an empty aggregate in Debian.
for jar in "$J"/netty-*.jar; do
  case "$jar" in *netty-all* | *-[0-9]*.jar) continue ;; esac
  CP="$CP:$jar"
done
CP="${CP#:}"

rm -rf "$OUT/src" "$OUT/classes"
mkdir -p "$OUT/src" "$OUT/classes"
protoc -I "$ROOT/proto" -I "$HERE/proto" --java_out="$OUT/src" \
  --plugin=protoc-gen-grpc-java="$PLUGIN" --grpc-java_out="$OUT/src" \
  atlas/gateway/v1/gateway.proto google/rpc/error_info.proto
# The 1.41 plugin annotates stubs with @javax.annotation.Generated, which no Debian jar
# provides on Java 11+.
find "$OUT/src" -name '*Grpc.java' -exec sed -i '/@javax\.annotation\.Generated/,/)/d' {} +
javac -nowarn -encoding UTF-8 -cp "$CP" -d "$OUT/classes" \
  $(find "$OUT/src" -name '*.java') "$HERE/AtlasInterop.java"
jar --create --file "$OUT/atlas-interop.jar" -C "$OUT/classes" .
echo "java suite: client jar $(stat -c %s "$OUT/atlas-interop.jar") bytes"
java -cp "$OUT/atlas-interop.jar:$CP" atlasinterop.AtlasInterop
