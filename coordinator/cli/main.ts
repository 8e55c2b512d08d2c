import { DROVER_VERSION } from '../../lib/version.js';

const HELP = `drover ${DROVER_VERSION}: operate a Drover-managed control plane

Usage: drover <command> [flags]

Commands:
  version         print the version
Flags:
  --version       print the version and exit
  --help          print this help and exit
`;

const argv = process.argv.slice(2);
if (argv.includes('--version') || argv[0] === 'version') {
  process.stdout.write(`drover ${DROVER_VERSION}\n`);
} else if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(HELP);
} else {
  process.stderr.write(`drover: unknown command ${JSON.stringify(argv[0])}; see drover --help\n`);
  process.exitCode = 2;
}
