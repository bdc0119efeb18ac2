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

export function controllerReference(apiKey: ApiKey): ControllerReference {
  const { name, uid } = apiKey.metadata;
  return { apiVersion: API_VERSION, kind: KIND, name, uid, controller: true, blockOwnerDeletion: true };
}
