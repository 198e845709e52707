// The MQTTRouter module.
