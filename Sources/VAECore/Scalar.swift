import _COpenBLAS

#if canImport(Glibc)
  import Glibc
#endif

/// The element type of the model: `Float` for training, `Double` for the gradient checks.
///
/// The layers are generic and `@inlinable` so that each client module compiles them specialized for
/// its element type; matrix products go to OpenBLAS (`sgemm`/`dgemm`). The other loops of the step
/// are the requirements in Kernels.swift: Double runs the Swift reference loops, Float the SIMD C
/// kernels of `_CKernels`, which the tests check against the reference.
public protocol VAEScalar: BinaryFloatingPoint, Sendable {
  /// Row-major C[m×n] = alpha·op(A)[m×k]·op(B)[k×n] + beta·C.
  static func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Self, a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
    beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
  static func exponential(_ x: Self) -> Self
  static func logOnePlus(_ x: Self) -> Self

  // Kernels (Kernels.swift).
  static func im2col(image: UnsafePointer<Self>, cols: UnsafeMutablePointer<Self>, geometry: WindowGeometry)
  static func col2im(
    cols: UnsafePointer<Self>, image: UnsafeMutablePointer<Self>, bias: UnsafePointer<Self>?, relu: Bool,
    geometry: WindowGeometry)
  static func addBias(
    _ y: UnsafeMutablePointer<Self>, bias: UnsafePointer<Self>, relu: Bool, channels: Int, columns: Int)
  static func channelSums(_ y: UnsafePointer<Self>, into sums: UnsafeMutablePointer<Self>, channels: Int, columns: Int)
  static func reluBackward(dy: UnsafeMutablePointer<Self>, output: UnsafePointer<Self>, count: Int)
  static func bceWithLogits(
    logits: UnsafePointer<Self>, targets: UnsafePointer<Self>, dLogits: UnsafeMutablePointer<Self>?,
    batch: Int, pixels: Int, perImage: UnsafeMutablePointer<Double>?) -> Double
}

@usableFromInline
func cblasTranspose(_ transpose: Bool) -> CBLAS_TRANSPOSE {
  transpose ? CblasTrans : CblasNoTrans
}

extension Float: VAEScalar {
  public static func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    cblas_sgemm(
      CblasRowMajor, cblasTranspose(transposeA), cblasTranspose(transposeB),
      Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
  }
  @inlinable public static func exponential(_ x: Float) -> Float { expf(x) }
  @inlinable public static func logOnePlus(_ x: Float) -> Float { log1pf(x) }
}

extension Double: VAEScalar {
  public static func gemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
    alpha: Double, a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
    beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
  ) {
    cblas_dgemm(
      CblasRowMajor, cblasTranspose(transposeA), cblasTranspose(transposeB),
      Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
  }
  @inlinable public static func exponential(_ x: Double) -> Double { exp(x) }
  @inlinable public static func logOnePlus(_ x: Double) -> Double { log1p(x) }
}

/// BLAS runs single-threaded inside each worker: vae-dist parallelises over micro-batches itself, and
/// OpenBLAS's own thread pool would oversubscribe the cores that Dispatch and the other ranks use.
public func configureBLASForWorkerThreads() {
  openblas_set_num_threads(1)
}

/// The OpenBLAS kernel family chosen for this CPU (e.g. "Haswell", "SkylakeX").
public func blasCoreName() -> String {
  guard let name = openblas_get_corename() else { return "unknown" }
  return String(cString: name)
}
