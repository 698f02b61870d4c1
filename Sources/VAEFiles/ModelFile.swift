import VAECore

/// The model's parameters as safetensors tensors with PyTorch's names, and back.
public enum ModelFile {
  /// The 18 parameter tensors of `parameters`, laid out by `layout`.
  public static func tensors(_ parameters: UnsafePointer<Float>, layout: ParameterLayout) -> [SafeTensors.Tensor] {
    layout.tensors.map { spec in
      SafeTensors.Tensor(
        name: spec.name, shape: spec.shape,
        values: Array(UnsafeBufferPointer(start: parameters + spec.offset, count: spec.count)))
    }
  }

  /// Parameters from a file holding the model's 18 tensors (a model.safetensors or a checkpoint).
  /// The latent size is read from `encoder.z_mean.bias`; every tensor must have the shape that size
  /// implies, and every value must be finite. Nothing is half-loaded: errors come before the result.
  public static func parameters(from file: SafeTensors.File, path: String) throws -> (ParameterLayout, ScalarBuffer<Float>) {
    guard let zMeanBias = file.tensor(named: "encoder.z_mean.bias"), zMeanBias.shape.count == 1,
      (1...1024).contains(zMeanBias.shape[0])
    else {
      throw FileError.incompatible(
        path: path, reason: "has no usable encoder.z_mean.bias tensor, so it is not a vae-dist model")
    }
    let layout = ParameterLayout(latentDim: zMeanBias.shape[0])
    let parameters = ScalarBuffer<Float>(count: layout.totalCount)
    for spec in layout.tensors {
      guard let tensor = file.tensor(named: spec.name) else {
        throw FileError.incompatible(path: path, reason: "lacks the tensor \(spec.name)")
      }
      guard tensor.shape == spec.shape else {
        throw FileError.incompatible(
          path: path,
          reason: "tensor \(spec.name) has shape \(tensor.shape), but a latent-\(layout.latentDim) model needs \(spec.shape)")
      }
      guard tensor.values.allSatisfy({ $0.isFinite }) else {
        throw FileError.incompatible(path: path, reason: "tensor \(spec.name) holds NaN or infinite values")
      }
      (parameters.pointer + spec.offset).update(from: tensor.values, count: spec.count)
    }
    return (layout, parameters)
  }
}
