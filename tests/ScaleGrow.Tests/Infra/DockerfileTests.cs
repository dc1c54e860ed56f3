using System.Text.RegularExpressions;

namespace ScaleGrow.Tests.Infra;

/// <summary>
/// infra/Dockerfile is internally consistent: what it copies exists, it publishes the Functions app with the CUDA
/// TorchSharp backend, it builds on the Azure Functions .NET isolated image (so the TorchSharp native fix decides for
/// the runtime's libstdc++), it checks the native libraries, and it declares nothing that looks like a secret.
/// </summary>
public class DockerfileTests
{
    private const string FunctionsProject = "functions/ScaleGrow.Functions/ScaleGrow.Functions.csproj";
    private const string FunctionsImage = "mcr.microsoft.com/azure-functions/dotnet-isolated:4-dotnet-isolated10.0";

    // The Functions app is written in parallel (issue 4); until it lands, only its own folder may be missing.
    private static readonly string[] PendingPaths = ["functions", "functions/ScaleGrow.Functions"];

    private readonly Dockerfile dockerfile =
        Dockerfile.Parse(File.ReadAllText(InfraFiles.InRepository("infra/Dockerfile")));

    [Fact]
    public void IsMultiStageAndEndsOnTheAzureFunctionsIsolatedImage()
    {
        Assert.True(dockerfile.Stages.Count >= 2, "the Dockerfile must be multi-stage");
        var final = dockerfile.Stages[^1];
        Assert.Equal(FunctionsImage, final.BaseImage);
        // Only the published app reaches the final image: one COPY, from the stage that publishes.
        var copies = dockerfile.InStage(final.Index).Where(i => i.Keyword is "COPY" or "ADD").ToList();
        var copy = Assert.Single(copies);
        Assert.Matches(@"^--from=\S+ /app/publish /home/site/wwwroot$", copy.Arguments);
        // The data that presets and quantize-on-upload read by default is in the image.
        var install = Assert.Single(dockerfile.InStage(final.Index), i => i.Keyword == "RUN" && i.Arguments.Contains("apt-get install"));
        Assert.Contains("dataset-fashion-mnist", install.Arguments);
        Assert.Contains("fortunes", install.Arguments);
    }

    [Fact]
    public void PublishesTheFunctionsAppWithTheCudaBackendOnTheRuntimeImage()
    {
        var publish = Assert.Single(dockerfile.Instructions,
            i => i.Keyword == "RUN" && i.Arguments.Contains("dotnet publish"));
        Assert.Contains("dotnet publish " + FunctionsProject, publish.Arguments);
        Assert.Contains("-p:TorchBackend=cuda", publish.Arguments);
        Assert.Matches(@"--output /app/publish\b", publish.Arguments);
        // The TorchSharp native fix decides by the libstdc++ of the machine that publishes: that must be the runtime
        // image, not the SDK image (Ubuntu 24.04, whose libstdc++ would make it skip the patch).
        Assert.Equal(FunctionsImage, dockerfile.Stages[publish.Stage].BaseImage);
        var stageCopies = dockerfile.InStage(publish.Stage).Where(i => i.Keyword == "COPY").Select(i => i.Arguments);
        Assert.Contains(stageCopies, a => a.StartsWith("--from=sdk /usr/share/dotnet ", StringComparison.Ordinal));
        var sdk = dockerfile.Stages.Single(s => s.Name == "sdk");
        Assert.StartsWith("mcr.microsoft.com/dotnet/sdk:10.0", sdk.BaseImage);
    }

    [Fact]
    public void ChecksTheNativeLibrariesOfThePublishOutputAfterPublishing()
    {
        var publish = dockerfile.Instructions.Single(i => i.Keyword == "RUN" && i.Arguments.Contains("dotnet publish"));
        var check = Assert.Single(dockerfile.Instructions,
            i => i.Keyword == "RUN" && i.Arguments.Contains("check-native-libs.sh"));
        Assert.Equal(publish.Stage, check.Stage);
        Assert.True(check.Line > publish.Line, "the native-library check must run after dotnet publish");
        Assert.Contains("check-native-libs.sh --require-cuda /app/publish", check.Arguments);
        Assert.Contains(dockerfile.ContextSources(), s => s.Source == "infra/check-native-libs.sh");
    }

    [Fact]
    public void EveryPathCopiedFromTheBuildContextExistsInTheRepository()
    {
        var sources = dockerfile.ContextSources().ToList();
        Assert.NotEmpty(sources);
        foreach (var (instruction, source) in sources)
        {
            Assert.False(Path.IsPathRooted(source) || source.Contains(".."),
                $"line {instruction.Line}: COPY source '{source}' must be relative to the repository root");
            var relative = source.TrimEnd('/');
            var full = InfraFiles.InRepository(relative);
            if (File.Exists(full) || Directory.Exists(full)) continue;
            Assert.True(PendingPaths.Contains(relative),
                $"line {instruction.Line}: COPY source '{source}' does not exist in the repository");
        }
        // The project being published is part of what is copied, and once it has landed it is the Functions app.
        Assert.Contains(sources,
            s => FunctionsProject.StartsWith(s.Source.TrimEnd('/') + "/", StringComparison.Ordinal));
        var project = InfraFiles.InRepository(FunctionsProject);
        if (File.Exists(project))
        {
            var text = File.ReadAllText(project);
            Assert.Contains("<AzureFunctionsVersion>v4</AzureFunctionsVersion>", text);
            Assert.Contains("Microsoft.Azure.Functions.Worker.Sdk", text);
        }
    }

    [Fact]
    public void DeclaresNoArgOrEnvThatLooksLikeASecret()
    {
        var secretName = new Regex("(KEY|SECRET|TOKEN|PASSWORD|PASSWD|PWD|CONNECTION|CREDENTIAL|SAS)",
            RegexOptions.IgnoreCase);
        var variables = dockerfile.Variables().ToList();
        Assert.NotEmpty(variables);
        foreach (var (instruction, name, value) in variables)
        {
            Assert.False(secretName.IsMatch(name),
                $"line {instruction.Line}: {instruction.Keyword} {name} looks like a secret");
            Assert.False(SecretPatterns.FindIn(value).Any(),
                $"line {instruction.Line}: {name} has a secret-like value");
        }
    }
}
