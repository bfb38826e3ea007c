"""MQTT uplink to HQ: outbox publisher, topics, wire models, HQ commands and the HQ reference receiver."""
