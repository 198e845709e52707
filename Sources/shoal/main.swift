import Broker
#if canImport(Glibc)
import Glibc
#endif

// The `shoal` executable: parse the command line, start the shards, wait for SIGINT/SIGTERM, exit 0.
// `shoal passwd ...` manages a password file instead (mosquitto_passwd's format and options).

if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "passwd" {
    exit(runPasswordCommand(Array(CommandLine.arguments.dropFirst(2))))
}

let request: CommandLineRequest
do {
    request = try parseCommandLine(Array(CommandLine.arguments.dropFirst()))
} catch {
    Logger(level: .error).error("shoal: \(error)")
    exit(2)
}

switch request {
case .help:
    print(shoalUsage)
case .version:
    print("shoal \(shoalVersion)")
case .run(let configuration):
    exit(runBroker(configuration))
}
