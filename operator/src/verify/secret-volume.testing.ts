import { mkdir, readdir, readlink, rename, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes a Secret volume as the kubelet's atomic writer does: every data key into a new timestamped
 * folder, then an atomic swap of the `..data` symlink; each key is a symlink to `..data/<key>`.
 * `generation` (1, 2, ...) names the folder, so it must differ between writes.
 */
export async function writeSecretVolume(
  root: string,
  files: Readonly<Record<string, string | Buffer>>,
  generation: number,
): Promise<void> {
  const folder = `..2026_11_28_12_00_00.${String(generation).padStart(6, '0')}`;
  await mkdir(path.join(root, folder));
  for (const [name, content] of Object.entries(files))
    await writeFile(path.join(root, folder, name), content);
  await symlink(folder, path.join(root, '..data_tmp'));
  await rename(path.join(root, '..data_tmp'), path.join(root, '..data'));
  for (const name of Object.keys(files)) {
    await symlink(`..data/${name}`, path.join(root, name)).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    });
  }
  // A key the Secret no longer holds loses its file, as the kubelet removes its symlink.
  for (const entry of await readdir(root)) {
    if (entry in files || entry.startsWith('..')) continue;
    const target = await readlink(path.join(root, entry)).catch(() => undefined);
    if (target === `..data/${entry}`) await unlink(path.join(root, entry));
  }
}

/** A Secret's data (base64, as the API serves it) as the kubelet writes it: one file per key, decoded. */
export function secretFiles(data: Readonly<Record<string, string>> | undefined): Record<string, Buffer> {
  return Object.fromEntries(
    Object.entries(data ?? {}).map(([name, value]) => [name, Buffer.from(value, 'base64')]),
  );
}
