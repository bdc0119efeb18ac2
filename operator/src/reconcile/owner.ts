import { API_VERSION, KIND } from '../api/names.ts';
import type { ApiKey } from '../api/types.ts';

/** A controller owner reference: the garbage collector deletes the object with its ApiKey. */
export interface ControllerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: true;
  blockOwnerDeletion: true;
}

/** A reference to `owner`, an ApiKey unless `kind` says otherwise (both are keyrotor.dev kinds). */
export function controllerReference(
  owner: Pick<ApiKey, 'metadata'>,
  kind: string = KIND,
): ControllerReference {
  const { name, uid } = owner.metadata;
  return { apiVersion: API_VERSION, kind, name, uid, controller: true, blockOwnerDeletion: true };
}
