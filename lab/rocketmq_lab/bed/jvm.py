"""The `java` command line every JVM of the bed shares: RocketMQ's servers and tools, and the compiled programs."""

import shutil
from collections.abc import Sequence
from pathlib import Path

JDK17_OPENS = [
    "--add-opens", "java.base/java.nio=ALL-UNNAMED", "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED", "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-exports", "java.base/jdk.internal.ref=ALL-UNNAMED", "--add-exports", "java.base/sun.nio.ch=ALL-UNNAMED",
]
# C1 only and no TLS: a cold start otherwise spends most of its CPU in the JIT and in generating the RSA key of
# a self-signed certificate for the permissive TLS mode (BigInteger.passesMillerRabin in jstack), several seconds
# per remoting server on two cores. Loopback-only test processes need neither. Not for code whose speed is
# measured: C1 code is slower once warm.
FAST_START = ["-XX:TieredStopAtLevel=1", "-Dtls.server.mode=disabled", "-Dtls.enable=false"]


def java_argv(classpath: Sequence[str], main_class: str, *, home: Path, options: Sequence[str] = ()) -> list[str]:
    """`java … main_class` for a 2-core machine; `home` becomes user.home, where RocketMQ code writes its logs."""
    java = shutil.which("java") or "java"
    return [java, "-server", "-XX:+UseSerialGC", "-XX:-UsePerfData", "-XX:ActiveProcessorCount=2", *options,
            *JDK17_OPENS, f"-Duser.home={home}", "-cp", ":".join(classpath), main_class]
