/** Label and annotation names the product sets or reads. */

/** On a namespace: opts it in (the MutatingWebhookConfiguration's namespaceSelector and the pull secret sync). */
export const OPT_IN_LABEL = 'mirrorgate.io/mirror';
export const OPT_IN_VALUE = 'enabled';
/** On a pod: `mirrorgate.io/mirror: disabled` leaves it alone. */
export const OPT_OUT_VALUE = 'disabled';
/** On a rewritten pod: JSON object, container name -> image as written before the rewrite. */
export const ORIGINAL_IMAGES_ANNOTATION = 'mirrorgate.io/original-images';
/** Static pods seen through the API server carry this annotation; the kubelet owns them, so they are left alone. */
export const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';
/** On objects the webhook creates. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'mirrorgate';
/** On pull secret copies: which source they copy. */
export const COPY_OF_LABEL = 'mirrorgate.io/copy-of';
/** On pull secret copies: hash of the source data, so rotation is detected without comparing bytes. */
export const SOURCE_HASH_ANNOTATION = 'mirrorgate.io/source-hash';
