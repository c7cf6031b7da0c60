/** The OS layer: reservations and their pages, memory probes, and which native build is loaded. */
export { type HeapInspection, type NativeBuild, type NativeBuildKind, nativeBuild } from './native';
export {
  type DecommitMode,
  MAX_RESERVATION_SIZE,
  type OsError,
  pageSize,
  type ReadablePages,
  Reservation,
  type ReservationAccess,
} from './pages';
export {
  residentBytes,
  rssBytes,
  type SmapsRollup,
  smapsRollup,
  type TransparentHugePages,
  transparentHugePages,
} from './probes';
