/**
 * Logs three events the way a replica process does, for test/cli/logging.test.ts:
 * `node --import tsx test/cli/logging-fixture.ts <pretty|json> [log file]`.
 */
import { parseLogFormat } from '../../src/cli/logging.js';
import { processLogger } from '../../src/cli/options.js';

const [format, logFile] = process.argv.slice(2);
const logger = processLogger('info', { replica: 2 }, logFile, parseLogFormat(format ?? 'json'));
logger.info({ view: 3, sequence: 17 }, 'view change installed');
logger.warn({ peer: 1, reason: 'bad MAC' }, 'rejected frame');
logger.error({ err: new Error('disk full') }, 'checkpoint could not be written');
