import { DROVER_VERSION } from '../lib/version.js';

const HELP = `drover-coordinator ${DROVER_VERSION}: the Drover control-plane coordinator

Usage: drover-coordinator [--config FILE] [options]

Options:
  --config FILE   YAML config (default /etc/drover/coordinator.yaml)
  --version       print the version and exit
  --help          print this help and exit
`;

const argv = process.argv.slice(2);
if (argv.includes('--version')) {
  process.stdout.write(`drover-coordinator ${DROVER_VERSION}\n`);
} else if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(HELP);
} else {
  process.stderr.write('drover-coordinator: not implemented yet\n');
  process.exitCode = 1;
}
