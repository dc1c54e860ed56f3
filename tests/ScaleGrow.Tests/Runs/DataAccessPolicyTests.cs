using System.Text;
using ScaleGrow.Data;
using ScaleGrow.Data.Text;
using ScaleGrow.Models;
using ScaleGrow.Runs;
using ScaleGrow.Tests.Orchestration;

namespace ScaleGrow.Tests.Runs;

/// <summary>
/// A run's data is checked before the run is registered (issue 16): it must be there, a text file must be text, and
/// on the service it must lie under an allowed root — after resolving <c>..</c> and symbolic links.
/// </summary>
public sealed class DataAccessPolicyTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("scalegrow-dataaccess-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string PathOf(string name) => Path.Combine(_dir.FullName, name);

    private static RunSpec Text(string name, string? path) => OrchestrationTestKit.TinyGrowth() with
    {
        Model = new ModelRequest { Family = "bert" },
        TextData = new TextDatasetSpec(name, path),
    };

    private static RunSpec Images(string? directory) => OrchestrationTestKit.TinyGrowth() with
    {
        Data = OrchestrationTestKit.TinyGrowth().Data with { Directory = directory },
    };

    [Fact]
    public void TheNamedDatasetIsAcceptedAndAFolderWithoutItsFilesIsNot()
    {
        DataAccessPolicy.Unrestricted.Check(Images(null)); // Fashion-MNIST from Debian
        DataAccessPolicy.FromSetting(null).Check(Images(null));
        Directory.CreateDirectory(PathOf("empty"));
        var e = Assert.Throws<DataFormatException>(() => DataAccessPolicy.Unrestricted.Check(Images(PathOf("empty"))));
        Assert.Contains("no training images file", e.Message);
        e = Assert.Throws<DataFormatException>(() => DataAccessPolicy.Unrestricted.Check(Images(PathOf("nowhere"))));
        Assert.Contains("does not exist", e.Message);
    }

    public static TheoryData<string, byte[], string> BadTextFiles() => new()
    {
        { "binary", [0x7f, (byte)'E', (byte)'L', (byte)'F', 0, 1, 2], "not a text file (a NUL byte at offset 4)" },
        { "latin1", Encoding.Latin1.GetBytes("caf\u00e9 au lait\n"), "not UTF-8 text (invalid byte at offset 3)" },
        { "empty", [], "is empty" },
    };

    [Theory]
    [MemberData(nameof(BadTextFiles))]
    public void ATextPathThatIsNotTextIsRefused(string name, byte[] content, string mentions)
    {
        File.WriteAllBytes(PathOf(name), content);
        var e = Assert.Throws<DataFormatException>(() =>
            DataAccessPolicy.Unrestricted.Check(Text(TextDatasetSpec.LabelledText, PathOf(name))));
        Assert.Contains(mentions, e.Message);
        Assert.Contains(PathOf(name), e.Message);
    }

    [Fact]
    public void AMissingTextFileOrAFolderIsRefusedAndRealTextPasses()
    {
        Assert.Contains("does not exist", Assert.Throws<DataFormatException>(() =>
            DataAccessPolicy.Unrestricted.Check(Text(TextDatasetSpec.LabelledText, PathOf("none.tsv")))).Message);
        Assert.Contains("is a folder", Assert.Throws<DataFormatException>(() =>
            DataAccessPolicy.Unrestricted.Check(Text(TextDatasetSpec.LabelledText, _dir.FullName))).Message);
        // UTF-8 whose multi-byte character is cut by the probe's end is still text.
        var text = new StringBuilder();
        while (Encoding.UTF8.GetByteCount(text.ToString()) < DataAccessPolicy.TextProbeBytes + 10)
            text.Append("pos\tgarçon naïve — ü\n");
        File.WriteAllText(PathOf("ok.tsv"), text.ToString());
        DataAccessPolicy.Unrestricted.Check(Text(TextDatasetSpec.LabelledText, PathOf("ok.tsv")));
    }

    [Fact]
    public void TheServiceReadsOnlyUnderItsRootsWhateverDotsAndLinksSay()
    {
        string root = PathOf("allowed"), outside = PathOf("outside");
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(outside);
        File.WriteAllText(Path.Combine(root, "in.tsv"), "a\tinside\n");
        File.WriteAllText(Path.Combine(outside, "secret.tsv"), "a\tsecret\n");
        File.CreateSymbolicLink(Path.Combine(root, "link.tsv"), Path.Combine(outside, "secret.tsv"));
        Directory.CreateSymbolicLink(Path.Combine(root, "dirlink"), outside);
        var policy = DataAccessPolicy.FromSetting($" {root} ; ");

        policy.Check(Text(TextDatasetSpec.LabelledText, Path.Combine(root, "in.tsv")));
        foreach (var evil in new[]
                 {
                     Path.Combine(outside, "secret.tsv"), Path.Combine(root, "..", "outside", "secret.tsv"),
                     Path.Combine(root, "link.tsv"), Path.Combine(root, "dirlink", "secret.tsv"), "/etc/passwd",
                 })
        {
            var e = Assert.Throws<InvalidSpecException>(() => policy.Check(Text(TextDatasetSpec.LabelledText, evil)));
            Assert.Contains("textData.path", e.Message);
            Assert.Contains("outside the data this service may read", e.Message);
        }
        Assert.Throws<InvalidSpecException>(() => policy.Check(Images("/etc")));
        Assert.Throws<InvalidSpecException>(() => DataAccessPolicy.FromSetting("relative/path"));
        // Named datasets stay readable on the service without any configured root.
        DataAccessPolicy.FromSetting("").Check(Images(null));
    }
}
