namespace ScaleGrow.Tests.Infrastructure;

/// <summary>
/// A read-only stream that cannot seek or report its length, and returns at most <paramref name="maxRead"/> bytes a
/// read: like a network download, whose short reads exercise every read loop.
/// </summary>
internal sealed class NonSeekableStream(byte[] data, int maxRead = 4093) : Stream
{
    private readonly MemoryStream _inner = new(data, writable: false);

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) =>
        _inner.Read(buffer, offset, Math.Min(count, maxRead));

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
