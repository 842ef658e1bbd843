// `node --import ./test/helpers/import-log.mjs ...` appends every module URL the process resolves to
// the file named by MEDGE_IMPORT_LOG (a module-resolution hook; used to check what a command loads).
import { register } from 'node:module';

register('./import-log-hooks.mjs', import.meta.url);
