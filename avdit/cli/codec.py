"""``avdit train-codec``, ``avdit codec import|roundtrip`` and ``avdit encode``: the latent codecs and the latents."""

from __future__ import annotations

import argparse

from avdit.cli.common import DEVICE_HELP, given, library_defaults


def _train_codec(args: argparse.Namespace) -> int:
    from avdit.train.codecs import CodecTrainSettings, train_codec

    settings = CodecTrainSettings(**given(args, CodecTrainSettings.__dataclass_fields__))
    result = train_codec(settings, args.out)
    figure = "PSNR" if args.kind == "video" else "SNR"
    print(f"{args.kind} codec in {args.out}: held-out {figure} {result['held_out_db']:.2f} dB after "
          f"{result['steps_done']} steps")
    return 0


def _tune_decoder(args: argparse.Namespace) -> int:
    from avdit.train.made_decoder import DecoderTuneSettings, tune_decoder

    settings = DecoderTuneSettings(**given(args, DecoderTuneSettings.__dataclass_fields__))
    result = tune_decoder(settings, args.out)
    done = (f"MSE {result['last_mse']:.5f} at step {result['steps_done']}" if result["last_mse"] is not None
            else f"all {result['steps_done']} steps were done before")
    print(f"codecs with the tuned video decoder in {args.out} ({done}); use them with --codecs {args.out}")
    return 0


def _codec_import(args: argparse.Namespace) -> int:
    from avdit.codecs.importing import import_codecs

    codecs = import_codecs(args.video, args.audio, args.data, args.out,
                           **given(args, ("clips", "batch_size", "device")))
    layout, video, audio = codecs.layout, codecs.video, codecs.audio
    video_shape = video.latent_shape(layout.frames, layout.height, layout.width)
    print(f"codecs in {args.out}: video {video.source['class']} ({layout.video_temporal_stride}x time, "
          f"{layout.video_spatial_stride}x space), audio {audio.source['class']} (hop {layout.audio_hop} at "
          f"{layout.sample_rate} Hz); {layout.frames} frames at {layout.fps} fps -> video latents {video_shape}, "
          f"audio latents {audio.latent_shape(layout.num_samples)}, {layout.num_segments} segments")
    return 0


def _codec_roundtrip(args: argparse.Namespace) -> int:
    import torch

    from avdit.codecs.interface import load_codecs
    from avdit.media import read_clip, write_mp4

    codecs = load_codecs(args.codecs)
    layout = codecs.layout
    clip = read_clip(args.input, layout.fps, layout.sample_rate, (layout.height, layout.width), start=args.offset,
                     duration=layout.duration)
    latents = codecs.encode(torch.from_numpy(clip.video)[None], torch.from_numpy(clip.audio)[None])
    video, audio = codecs.decode(latents)
    write_mp4(args.output, video[0].numpy(), audio[0].numpy(), layout.fps, layout.sample_rate)
    print(f"{args.output}: {float(layout.duration)} s through video latents {tuple(latents.video.shape[1:])} and "
          f"audio latents {tuple(latents.audio.shape[1:])}")
    return 0


def _encode(args: argparse.Namespace) -> int:
    from avdit.utils import distributed
    from avdit.codecs.interface import bundled_codecs_dir, load_codecs
    from avdit.codecs.shards import encode_dataset
    from avdit.data.datasets import is_bouncing_tones

    codecs_dir = args.codecs
    if codecs_dir is None:
        if not is_bouncing_tones(args.data):
            raise ValueError(f"give --codecs: the codec folder trained on {args.data} (`avdit train-codec video --data "
                             f"{args.data} --out CODECS`, the same for audio) or imported for it (`avdit codec "
                             "import`); the bundled codecs take Bouncing Tones only")
        codecs_dir = bundled_codecs_dir()
    d = distributed.init(args.device)  # under torchrun the ranks share the shards
    try:
        index = encode_dataset(args.data, load_codecs(codecs_dir), codecs_dir, args.out, ranks=d,
                               **given(args, ("split", "num", "shard_size", "batch_size", "workers")))
    finally:
        distributed.shutdown(d)
    if d.main:
        print(f"{index['clips']} clips in {len(index['shards'])} shards under {args.out}")
    return 0


def _add_train_codec(sub: argparse._SubParsersAction) -> None:
    from avdit.codecs.audio import AudioCodecConfig
    from avdit.train.codecs import RECIPES, CodecTrainSettings
    from avdit.codecs.video import VideoCodecConfig

    c, video, audio = library_defaults(CodecTrainSettings), RECIPES["video"], RECIPES["audio"]
    p = sub.add_parser("train-codec", help="train the video or the audio codec (rerun to resume); both with the same "
                                           "--out make one codec folder")
    p.add_argument("kind", choices=["video", "audio"], help="which codec")
    p.add_argument("--data", help="'bouncing-tones' (made on the fly; the default), a folder from `avdit data` or "
                                  "`avdit prepare` (the codec takes its clip geometry)")
    p.add_argument("--out", required=True, help="codec folder: checkpoints, samples, the trained codec")
    p.add_argument("--steps", type=int,
                   help=f"steps of the whole autoencoder (default: video {video['steps']}, audio {audio['steps']})")
    p.add_argument("--batch-size", type=int, help=f"clips per step (default {c.batch_size})")
    p.add_argument("--lr", type=float, help=f"peak learning rate of those steps, cosine decay (default: video "
                                            f"{video['lr']:g}, audio {audio['lr']:g})")
    p.add_argument("--latent-channels", type=int, help=f"latent channels (default: video "
                                                       f"{VideoCodecConfig.latent_channels}, audio "
                                                       f"{AudioCodecConfig.latent_channels})")
    p.add_argument("--seed", type=int, help=f"random seed (default {c.seed})")
    p.add_argument("--sample-every", type=int,
                   help=f"write a held-out reconstruction every N steps (default {c.sample_every})")
    p.add_argument("--checkpoint-every", type=int, help=f"checkpoint every N steps (default {c.checkpoint_every})")
    p.add_argument("--workers", type=int, help=f"DataLoader worker processes (default {c.workers})")
    p.add_argument("--precision", choices=["fp32", "bf16"],
                   help=f"autocast precision of the codec's forward pass (default: video {video['precision']}, "
                        f"audio {audio['precision']})")
    p.add_argument("--decoder-steps", type=int,
                   help="after --steps, train the decoder alone on plain MSE for N steps; the encoder and so the "
                        f"latents stay as they are (default: video {video['decoder_steps']}, audio "
                        f"{audio['decoder_steps']})")
    p.add_argument("--decoder-lr", type=float,
                   help=f"peak learning rate of the decoder steps, cosine decay (default {c.decoder_lr:g})")
    p.add_argument("--sharpen-width", type=int,
                   help="video: channels of the full-resolution sharpening head the decoder steps add "
                        f"(0: none; default {c.sharpen_width})")
    p.set_defaults(func=_train_codec)


def _add_tune_decoder(sub: argparse._SubParsersAction) -> None:
    from avdit.train.made_decoder import DecoderTuneSettings

    d = library_defaults(DecoderTuneSettings)
    p = sub.add_parser("tune-decoder", help="train the video decoder on latents a model makes, so that it decodes the "
                                            "model's own errors (a steadier disc in streams; docs/streams.md measures "
                                            "what it costs); writes a codec folder for --codecs (on the CPU; rerun to "
                                            "resume)")
    p.add_argument("--checkpoint", help="the model (default: the bundled one)")
    p.add_argument("--codecs", help="its codec folder (default: the one the checkpoint names)")
    p.add_argument("--data", help="the clips the model was trained on: 'bouncing-tones', a folder from `avdit data` or "
                                  "`avdit prepare`, or the latents folder from `avdit encode` (its clips are used); "
                                  "default: those the checkpoint's training latents were encoded from")
    p.add_argument("--out", required=True, help="codec folder to write: the tuned video codec and the model's audio "
                                                "codec")
    p.add_argument("--clips", type=int, help=f"training clips the model makes latents of (default {d.clips})")
    p.add_argument("--steps", type=int, help=f"decoder steps (default {d.steps})")
    p.add_argument("--batch-size", type=int, help=f"clips per step (default {d.batch_size})")
    p.add_argument("--lr", type=float, help=f"peak learning rate, cosine to 0 (default {d.lr:g})")
    p.add_argument("--highest", type=int, help=f"highest noise level the made latents start from (default {d.highest})")
    p.add_argument("--clean", type=float, help=f"share of clips given as their own latents (default {d.clean})")
    p.add_argument("--seed", type=int, help=f"random seed (default {d.seed})")
    p.add_argument("--checkpoint-every", type=int, help=f"save the run every N steps (default {d.checkpoint_every})")
    p.set_defaults(func=_tune_decoder)


def _add_codec_tools(sub: argparse._SubParsersAction) -> None:
    from avdit.codecs.importing import import_codecs
    from avdit.codecs.adapters import supported_classes

    i = library_defaults(import_codecs)
    codec = sub.add_parser("codec", help="codec utilities")
    codec_sub = codec.add_subparsers(dest="action", required=True)
    imported = codec_sub.add_parser("import", help="a codec folder from local pretrained models (nothing downloaded), "
                                                   "its latent statistics measured on a prepared folder")
    imported.add_argument("--video", required=True, metavar="CLASS:FOLDER",
                          help=f"video autoencoder: {supported_classes('video')}; FOLDER as save_pretrained wrote it")
    imported.add_argument("--audio", required=True, metavar="CLASS:FOLDER",
                          help=f"audio autoencoder: {supported_classes('audio')}")
    imported.add_argument("--data", required=True,
                          help="a folder from `avdit prepare` (or `avdit data`): the codecs take its clip geometry "
                               "and measure their latent statistics on its training clips")
    imported.add_argument("--out", required=True, help="codec folder to write (give it to --codecs)")
    imported.add_argument("--clips", type=int,
                          help=f"training clips the statistics are measured on (default {i.clips})")
    imported.add_argument("--batch-size", type=int, help=f"clips per encoding batch (default {i.batch_size})")
    imported.add_argument("--device", help=DEVICE_HELP)
    imported.set_defaults(func=_codec_import)
    roundtrip = codec_sub.add_parser("roundtrip", help="encode and decode a clip to hear and see what the latents keep")
    roundtrip.add_argument("input", help="a video file with audio")
    roundtrip.add_argument("output", help="the mp4 to write")
    roundtrip.add_argument("--codecs", default=None, help="codec folder (default: the bundled Bouncing Tones codecs)")
    roundtrip.add_argument("--offset", type=float, default=0.0, help="start of the clip in the input, seconds")
    roundtrip.set_defaults(func=_codec_roundtrip)


def _add_encode(sub: argparse._SubParsersAction) -> None:
    from avdit.codecs.shards import encode_dataset

    e = library_defaults(encode_dataset)
    encode = sub.add_parser("encode", help="write the latents of a dataset into safetensors shards (under torchrun "
                                           "the processes share them: rank k %% world encodes shard k)")
    encode.add_argument("data", help="'bouncing-tones', a folder from `avdit data` or one from `avdit prepare`")
    encode.add_argument("--codecs", default=None,
                        help="codec folder (`avdit train-codec` or `avdit codec import`); required but for Bouncing "
                             "Tones, whose default is the bundled codecs")
    encode.add_argument("--out", required=True, help="output folder for the shards and index.json")
    encode.add_argument("--split", choices=["train", "test"], help=f"which split (default {e.split})")
    encode.add_argument("--num", "--num-clips", dest="num", type=int,
                        help="clips to encode (required for 'bouncing-tones'; default: all of a folder); under "
                             "torchrun write --num-clips (torchrun reads --num as its own --numa-binding)")
    encode.add_argument("--shard-size", type=int, help=f"clips per shard (default {e.shard_size})")
    encode.add_argument("--batch-size", type=int,
                        help=f"clips per encoding batch (default {e.batch_size}; diffusers codecs run a batch a clip "
                             "at a time, so their memory does not grow with it)")
    encode.add_argument("--workers", type=int, help=f"DataLoader worker processes (default {e.workers})")
    encode.add_argument("--device", help="where the codecs run: cpu or cuda (default: cuda when available; under "
                                         "torchrun, each rank its own GPU)")
    encode.set_defaults(func=_encode)


def register(sub: argparse._SubParsersAction) -> None:
    _add_train_codec(sub)
    _add_tune_decoder(sub)
    _add_codec_tools(sub)
    _add_encode(sub)
