/**
 * Frozen base weights in NF4 with double quantization, bit-compatible with bitsandbytes. (Arrives with the
 * training issue; the module exists so the reactor's dependency order is fixed from the start.)
 */
package dev.jtune.quant;
