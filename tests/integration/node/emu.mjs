// Starts docdb-emu for a Node.js integration test and stops it, checking it exits cleanly.
// The binary comes from $DOCDB_EMU and the certificates from $TEST_CERTS (set by CMake).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';

export const cert = (name) => path.join(process.env.TEST_CERTS || 'test-certs', name);

export async function startEmu(extra = []) {
  const args = ['--port', '0', '--tls-cert', cert('server.pem'), '--tls-key', cert('server.key'),
    '--user', 'alice:s3cret', ...extra];
  const proc = spawn(process.env.DOCDB_EMU || 'docdb-emu', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout });
  const line = await new Promise((resolve, reject) => {
    lines.once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`docdb-emu exited with ${code}`)));
  });
  if (!line.startsWith('listening on ')) throw new Error(`docdb-emu did not start: ${line}`);
  const port = Number(line.slice(line.lastIndexOf(':') + 1));
  return {
    port,
    // SIGTERM, then the exit code: 0 when it stopped cleanly (no leaks under ASan).
    stop: () => new Promise((resolve) => {
      proc.once('exit', (code) => resolve(code));
      proc.kill('SIGTERM');
    }),
  };
}
