import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The credentials of one local control plane, all files inside its run folder. */
export interface Pki {
  /** CA that signed the API server's serving certificate; clients trust it. */
  readonly caCert: string;
  readonly servingCert: string;
  readonly servingKey: string;
  /** Signs and verifies ServiceAccount tokens (TokenRequest). */
  readonly serviceAccountKey: string;
  /** Static bearer tokens (--token-auth-file): the admin used by tests and kube-controller-manager. */
  readonly tokenFile: string;
  readonly adminToken: string;
  readonly controllerManagerToken: string;
}

async function openssl(cwd: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0] ?? ''} failed: ${stderr.trim() || String(error)}`, { cause: error });
  }
}

/**
 * Writes a throwaway CA, a serving certificate for 127.0.0.1/localhost, a ServiceAccount signing key
 * and a static token file into `dir`. Node cannot mint X.509 certificates on its own and openssl is on
 * every Debian machine, so openssl is the smaller dependency.
 */
export async function writePki(dir: string): Promise<Pki> {
  const file = (name: string) => path.join(dir, name);
  await openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '7', '-subj', '/CN=keyrotor-local-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]); // prettier-ignore
  await openssl(dir, [
    'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'serving.key', '-out', 'serving.csr', '-subj', '/CN=localhost',
  ]); // prettier-ignore
  await writeFile(
    file('serving.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n',
  );
  await openssl(dir, [
    'x509', '-req', '-in', 'serving.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-days', '7', '-out', 'serving.crt', '-extfile', 'serving.ext',
  ]); // prettier-ignore
  await openssl(dir, ['genrsa', '-out', 'service-account.key', '2048']);

  const adminToken = randomBytes(32).toString('hex');
  const controllerManagerToken = randomBytes(32).toString('hex');
  // token,user,uid,"groups"
  await writeFile(
    file('tokens.csv'),
    `${adminToken},keyrotor-admin,keyrotor-admin,"system:masters"\n` +
      `${controllerManagerToken},system:kube-controller-manager,kcm,"system:masters"\n`,
    { mode: 0o600 },
  );
  return {
    caCert: file('ca.crt'),
    servingCert: file('serving.crt'),
    servingKey: file('serving.key'),
    serviceAccountKey: file('service-account.key'),
    tokenFile: file('tokens.csv'),
    adminToken,
    controllerManagerToken,
  };
}
