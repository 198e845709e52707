// The Broker module.
