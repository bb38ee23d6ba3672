/** A uPlot line chart of time series (x: unix seconds); resized with its container. */
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";

export interface ChartProps {
  /** The chart's accessible name. */
  label: string;
  series: { label: string; color: string }[];
  /** `[xs, ...one array per series]`. */
  data: number[][];
}

const HEIGHT = 220;

export function Chart({ label, series, data }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const names = series.map((s) => s.label).join("|");

  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const options: uPlot.Options = {
      width: Math.max(300, el.clientWidth),
      height: HEIGHT,
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: false } }))],
      axes: [{}, { size: 50 }],
      scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      legend: { live: false },
    };
    const chart = new uPlot(options, data as uPlot.AlignedData, el);
    plot.current = chart;
    const observer = new ResizeObserver(() => chart.setSize({ width: Math.max(300, el.clientWidth), height: HEIGHT }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      chart.destroy();
      plot.current = null;
    };
    // rebuilt only when the series change; data updates go through setData below
  }, [names]);

  useEffect(() => {
    plot.current?.setData(data as uPlot.AlignedData);
  }, [data]);

  return <div class="chart" role="img" aria-label={label} ref={box} />;
}
