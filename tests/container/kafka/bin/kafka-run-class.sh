#!/bin/bash
# The stand-in's kafka-run-class.sh: a Kafka class with the jars on the class path.
exec java -Xmx256m -XX:TieredStopAtLevel=1 -cp "/opt/kafka/libs/*" \
    -Dlog4j.configuration=file:/opt/kafka/config/log4j.properties "$@"
