export { describeRequirements, describeResources, unplacedReasons } from './explain.js';
export { type MoveVerdict, moveFeasibility } from './feasible.js';
export { place } from './place.js';
export type { PlacementInput, PlacementResult, RefusedMove } from './types.js';
