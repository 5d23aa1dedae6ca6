// KeyService: re-encrypt every stored secret under the keyring's current key (see
// catalog/rotate-encryption-keys.ts, which the CLI also calls offline).
import type { ServiceImpl } from '@connectrpc/connect';
import type { KeyService } from '@sluice/proto';
import { rotateEncryptionKeys } from '../catalog/rotate-encryption-keys.ts';
import type { ServiceDeps } from './service-deps.ts';

export function createKeyService(deps: ServiceDeps): ServiceImpl<typeof KeyService> {
  return {
    async rotateEncryptionKeys() {
      const result = await rotateEncryptionKeys(deps.pool, deps.keyring);
      deps.logger.info({ reencrypted: result.reencrypted, keyId: result.keyId }, 'secrets re-encrypted');
      return { reencrypted: BigInt(result.reencrypted), keyId: result.keyId };
    },
  };
}
