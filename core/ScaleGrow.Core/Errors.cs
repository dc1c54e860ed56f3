namespace ScaleGrow;

/// <summary>
/// Base of every error ScaleGrow reports to a user: its message is one line that names the file, tensor, layer or
/// field at fault and what was expected. The CLI prints it as one line; the HTTP layer returns it as a 400.
/// </summary>
public class ScaleGrowException : Exception
{
    public ScaleGrowException(string message) : base(message) { }
    public ScaleGrowException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A run spec, option or argument is invalid (checked before any work starts).</summary>
public class InvalidSpecException : ScaleGrowException
{
    public InvalidSpecException(string message) : base(message) { }
}

/// <summary>A data file (IDX, CIFAR, text) is missing, truncated or malformed.</summary>
public class DataFormatException : ScaleGrowException
{
    public DataFormatException(string message) : base(message) { }
    public DataFormatException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A checkpoint or upload is malformed or does not match its architecture spec. Treated as hostile input.</summary>
public class CheckpointFormatException : ScaleGrowException
{
    public CheckpointFormatException(string message) : base(message) { }
    public CheckpointFormatException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// A model produced NaN or infinite outputs (weights that overflow float32, or a diverged run): accuracy, loss and
/// logits would be meaningless, so they are refused rather than reported (or written as JSON that cannot hold them).
/// </summary>
public class NonFiniteOutputException : ScaleGrowException
{
    public NonFiniteOutputException(string message, long nonFiniteOutputs, long outputs) : base(message)
    {
        NonFiniteOutputs = nonFiniteOutputs;
        Outputs = outputs;
    }

    public long NonFiniteOutputs { get; }
    public long Outputs { get; }
}
