// The BrokerTLS module.
