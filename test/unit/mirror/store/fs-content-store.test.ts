import { ManualClock } from '../../../../src/common/clock.js';
import { FsStorage } from '../../../../src/mirror/store/fs/fs-storage.js';
import { describeContentStoreContract } from '../../../helpers/storage-contract.js';
import { makeTempDir } from '../../../helpers/tmp.js';

async function fsStorage(): Promise<{ storage: FsStorage; cleanup(): Promise<void> }> {
  const dir = await makeTempDir('mg-content-');
  const storage = new FsStorage(dir.path, new ManualClock());
  await storage.prepare();
  return { storage, cleanup: () => dir.cleanup() };
}

describeContentStoreContract('FsContentStore (blobs)', async () => {
  const { storage, cleanup } = await fsStorage();
  return { store: storage.blobs, cleanup };
});

describeContentStoreContract('FsContentStore (manifests)', async () => {
  const { storage, cleanup } = await fsStorage();
  return { store: storage.manifests, cleanup };
});
