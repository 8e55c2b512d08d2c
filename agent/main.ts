import { DROVER_VERSION } from '../lib/version.js';

const HELP = `drover-agent ${DROVER_VERSION}: the Drover node daemon

Usage: drover-agent [--config FILE] [options]

Options:
  --config FILE   YAML config (default /etc/drover/agent.yaml)
  --version       print the version and exit
  --help          print this help and exit
`;

const argv = process.argv.slice(2);
if (argv.includes('--version')) {
  process.stdout.write(`drover-agent ${DROVER_VERSION}\n`);
} else if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(HELP);
} else {
  process.stderr.write('drover-agent: not implemented yet\n');
  process.exitCode = 1;
}
