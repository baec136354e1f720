/**
 * What the driver feeds the core. The driver authenticates senders before building an event:
 * `from` of a message is the replica at the other end of an authenticated channel, and a client
 * request arrives only on the channel of the client it names.
 */
import type { ClientRequest, Evidence, ForensicProof, ReplicaMessage } from '../messages/types.js';
import type { KeyEpoch, ReplicaId, ViewNumber } from '../messages/ids.js';

export type ReplicaEvent =
  | { readonly kind: 'message'; readonly from: ReplicaId; readonly message: ReplicaMessage }
  | { readonly kind: 'client-request'; readonly request: ClientRequest }
  /**
   * The key registry behind the core's crypto learned new key epochs (certificates from the
   * guardian or a peer): signatures that did not verify for want of a key may verify now, and
   * epochs may have been retired. The replica retries a restored checkpoint it could not verify,
   * checks its stable certificate again, and re-signs and broadcasts its checkpoint vote under its
   * current epoch (see Replica #recertifyIfDue).
   */
  | { readonly kind: 'keys-changed' }
  /**
   * A transferable proof against `replica`, made under its key epoch `keyEpoch`, was verified
   * (by the replica process for a client's report, or by the guardian for any proof): the replica
   * stops counting its messages until its epoch is above `keyEpoch`, i.e. until it has been
   * rejuvenated. The driver verified the proof; the core takes it on the driver's word.
   */
  | {
      readonly kind: 'cut-off';
      readonly replica: ReplicaId;
      readonly keyEpoch: KeyEpoch;
      readonly reason: string;
      /**
       * The proof, when the driver has it: it counts toward more than f proven (safe mode), and
       * it is checked again there (a forensic proof must hold for anyone who reads it).
       */
      readonly proof?: Evidence;
    }
  /**
   * The replica's guardian keeps a fork proof (another guardian's, or one it verified earlier):
   * the replica enters safe mode on its word, as at a start with ReplicaOptions.safeModeOrder,
   * even if the proof no longer verifies with the keys it knows.
   */
  | { readonly kind: 'safe-mode-order'; readonly proof: ForensicProof }
  /** Logical time in milliseconds, non-decreasing; the only clock the core sees. */
  | { readonly kind: 'tick'; readonly now: number }
  /**
   * The replica's guardian asks for a view change: the last step of a rejuvenation, so that the
   * rejuvenated replica (which sat out the views it may have voted in) votes again at once.
   */
  | {
      readonly kind: 'change-view';
      readonly reason: string;
      /**
       * Replicas about to be rejuvenated: the new view is the first one after the current view
       * led by none of them, so the next rejuvenation does not take the leader down.
       */
      readonly avoidLeaders?: readonly ReplicaId[];
      /**
       * The view the request is about (the one the rejuvenated replica sat out, or the one the
       * leader handing over leads): a replica already past it ignores the request, since the view
       * change it asks for has happened. A request delivered late must not cost a second one.
       */
      readonly aboveView?: ViewNumber;
    };
