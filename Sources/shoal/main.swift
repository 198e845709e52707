import Broker
#if canImport(Glibc)
import Glibc
#endif

// The `shoal` executable: parse the command line, start the shards, wait for SIGINT/SIGTERM, exit 0.

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
