// Fixed names the stack's parts share: the WebSocket stage, the roster's user index, the
// usage and device keys of the history table, the target types of the EMF metrics.

/** The WebSocket stage; part of every client URL and of CALLBACK_URL. */
export const STAGE_NAME = 'main';
/** The roster's user index (docs/design.md: Roster). */
export const USER_INDEX = 'byUser';
/**
 * The partition keys of usage items in the history table (docs/design.md: Usage): `U#<tenant|*>`. The
 * functions that touch the history table for usage only are limited to them (`dynamodb:LeadingKeys`).
 */
export const USAGE_KEY_PATTERN = 'U#*';
/**
 * The partition keys of device items in the history table (docs/design.md: Web Push): `D#<tenant>`. The device
 * grants of default, publish-api and the publisher are limited to them (`dynamodb:LeadingKeys`).
 */
export const DEVICE_KEY_PATTERN = 'D#*';
/**
 * The partition keys of online items in the history table (docs/design.md: Events): `O#<tenant>`. The events
 * function's grant is limited to them (`dynamodb:LeadingKeys`).
 */
export const ONLINE_KEY_PATTERN = 'O#*';
/**
 * The target types the EMF documents name in their `Target` dimension (the dashboard graphs one
 * line each): model's `TargetKind::ALL`, which services/lambdas/tests/target_types.rs holds this
 * list to.
 */
export const TARGET_TYPES = ['users', 'tenant', 'connections', 'broadcast'] as const;
