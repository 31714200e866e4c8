// Package catalog is asi1d's model catalog: the GGUF files in a models
// directory, their per-model settings, and the tools that bring files in
// (import, pull), list them and take them out.
//
// # The catalog
//
// Every *.gguf file under the models directory (searched recursively;
// hidden directories and *.partial downloads are skipped) is a model. Its
// id is the file's base name without ".gguf" (models/llama-3.2-1b.gguf is
// "llama-3.2-1b") unless the manifest names the file under another id.
// Scan reads each file's GGUF header (ReadFacts) and returns one Entry per
// model, sorted by id. A model that cannot be used (a truncated or corrupt
// file, a manifest entry whose file is missing, an id or alias that another
// model also claims) is still listed, with Entry.Err saying why; one bad
// file never fails the scan. serve --model FILE is a catalog of one
// (Single).
//
// # The manifest
//
// models.json in the models directory (ManifestFile) holds optional
// settings per model id. A person edits it; import and pull write the
// sha256 of what they brought in. Every field is optional:
//
//	{
//	  "models": {
//	    "stories": {
//	      "file": "stories260K.gguf",
//	      "sha256": "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d",
//	      "aliases": ["asi1-mini"],
//	      "ctx": 4096,
//	      "parallel": 4,
//	      "gpu_layers": 99,
//	      "chat_template": "{% for m in messages %}...{% endfor %}",
//	      "sampling": {"temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1},
//	      "preload": true
//	    }
//	  }
//	}
//
// file is relative to the models directory or absolute (default
// "<id>.gguf"); sha256 pins the file's checksum, so that a file changed on
// disk is refused at load (Entry.Verify); ctx, parallel and gpu_layers are
// serve's --ctx, --parallel and --gpu-layers for this model; chat_template
// replaces the template in the GGUF; sampling holds the defaults for
// request fields a client leaves out; preload loads the model when the
// server starts. Unknown fields are an error (a typo must not be silently
// ignored), and so is JSON that does not parse; both name the file and
// line.
//
// # Bringing models in
//
// Import copies (or hard-links) a local file into the directory; Pull
// fetches one, resuming an interrupted download, from a Hugging Face hub
// (hf.co/OWNER/REPO:QUANT, hf.co/OWNER/REPO/FILE.gguf, huggingface.co
// links; the hub at HF_ENDPOINT, with HF_TOKEN) or from a URL the operator
// names (a site's own HTTP mirror). A hub file is checked against the
// hub's own checksum (the sha256 of its LFS record); a URL's against the
// one given or published beside it (URL + ".sha256"). Both write through
// a temporary file and a rename, check the GGUF header, and record the
// sha256 in the manifest; a mismatch leaves nothing behind. Pull ignores
// proxy settings in the environment; for a plain URL it refuses redirects
// to another host, and for the hub it follows the redirect to the hub's
// storage host without the token. A split model (NAME-00001-of-0000N.gguf
// and its parts) is one model whose file is the first part. RunCLI is
// `asi1d models`; docs/MODELS.md is the user's page.
package catalog
