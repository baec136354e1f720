/** The adversary catalogue and the pure mechanics of its behaviours (see catalogue.ts). */
export * from './catalogue.js';
export * from './outgoing.js';
export { FaultyService } from './faulty-service.js';
